/**
 * The one HTTP call a server tool makes: a signed POST to its webhook. Every failure mode
 * (non-2xx, timeout, unreachable, malformed answer) comes back as a value, never a throw, so the
 * session can hand the model an error output and go on.
 */
import { signatureHeader } from './signing';

export interface WebhookCall {
  call_id: string;
  name: string;
  arguments: unknown;
  session_id: string;
  user: string;
  tenant: string | null;
  model: string;
}

export type WebhookResult =
  | { ok: true; status: number; output: unknown; latencyMs: number }
  | { ok: false; status: number | null; error: 'http_status' | 'timeout' | 'unreachable' | 'malformed_response'; message: string; latencyMs: number };

/** Answers larger than this are refused as malformed: a tool output goes into the model's context. */
export const MAX_WEBHOOK_RESPONSE_BYTES = 256 * 1024;

export async function callWebhook(
  target: { url: string; timeout_ms: number },
  call: WebhookCall,
  secret: string,
  now: () => number = Date.now,
): Promise<WebhookResult> {
  const body = JSON.stringify(call);
  const started = now();
  const latency = (): number => now() - started;
  let res: Response;
  let text: string;
  try {
    res = await fetch(target.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'idempotency-key': call.call_id,
        'relay-signature': signatureHeader(secret, body, Math.floor(now() / 1000)),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(target.timeout_ms),
    });
    text = await res.text();
  } catch (err) {
    // Duck-typed: the abort arrives as a DOMException, which is not an Error in every realm.
    const name = (err as { name?: unknown } | null)?.name;
    const timedOut = name === 'TimeoutError' || name === 'AbortError';
    return timedOut
      ? { ok: false, status: null, error: 'timeout', message: `The tool did not answer within ${target.timeout_ms} ms.`, latencyMs: latency() }
      : { ok: false, status: null, error: 'unreachable', message: 'The tool could not be reached.', latencyMs: latency() };
  }
  if (res.status < 200 || res.status > 299) {
    return { ok: false, status: res.status, error: 'http_status', message: `The tool failed (HTTP ${res.status}).`, latencyMs: latency() };
  }
  if (Buffer.byteLength(text) > MAX_WEBHOOK_RESPONSE_BYTES) {
    return { ok: false, status: res.status, error: 'malformed_response', message: 'The tool answered with more data than the relay accepts.', latencyMs: latency() };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, status: res.status, error: 'malformed_response', message: 'The tool answered with something that is not JSON.', latencyMs: latency() };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || !('output' in parsed)) {
    return { ok: false, status: res.status, error: 'malformed_response', message: 'The tool answered without an "output".', latencyMs: latency() };
  }
  return { ok: true, status: res.status, output: (parsed as { output: unknown }).output, latencyMs: latency() };
}
