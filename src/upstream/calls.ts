/**
 * The upstream's WebRTC call API (GA): create a call from an SDP offer, hang it up, and where its
 * sideband WebSocket lives. Paths follow the provider's HTTP base, so OpenAI and compatible
 * services get `{base}/realtime/calls`, and Azure GA `{endpoint}/openai/v1/realtime/calls`, both
 * with the provider's own auth header (Bearer, or `api-key`). Holds the key: never log a target.
 */
import { mapHandshakeFailure, type HandshakeFailure } from '../relay/close-codes';
import type { UpstreamProvider, UpstreamTarget } from './provider';

export type CallCreateResult =
  | { ok: true; answerSdp: string; callId: string; setupMs: number }
  | { ok: false; status: number | 'timeout' | 'network'; failure: HandshakeFailure };

/** Providers without a WebRTC call API; the relay answers 501 for them. */
export function callsUnsupportedReason(provider: UpstreamProvider): string | null {
  if (provider.name === 'cometapi') return 'CometAPI offers no WebRTC call API; use the WebSocket endpoint (GET /v1/realtime).';
  if (provider.dialect !== 'ga') return 'WebRTC calls through the relay need the GA Realtime API (UPSTREAM_API_DIALECT=ga).';
  return null;
}

/** Headers without the JSON content type httpTarget adds: each call sets its own. */
function target(provider: UpstreamProvider, path: string): UpstreamTarget {
  const t = provider.httpTarget(path);
  const headers = { ...t.headers };
  delete headers['Content-Type'];
  return { url: t.url, headers };
}

const MAX_ANSWER_BYTES = 64 * 1024;
const CALL_ID = /^[A-Za-z0-9_-]{1,200}$/;

/** `POST {base}/realtime/calls` with multipart `sdp` + `session`, the form backends use. */
export async function createUpstreamCall(
  provider: UpstreamProvider,
  offer: { sdp: string; session: Record<string, unknown> },
  timeoutMs: number,
): Promise<CallCreateResult> {
  const t = target(provider, '/realtime/calls');
  const form = new FormData();
  form.set('sdp', offer.sdp);
  form.set('session', JSON.stringify(offer.session));
  const started = performance.now();
  let res: Response;
  try {
    res = await fetch(t.url, { method: 'POST', headers: t.headers, body: form, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
  } catch (err) {
    const status = err instanceof Error && err.name === 'TimeoutError' ? 'timeout' : 'network';
    return { ok: false, status, failure: mapHandshakeFailure(status) };
  }
  const text = (await res.text()).slice(0, MAX_ANSWER_BYTES);
  if (res.status !== 201 && res.status !== 200) {
    let code: string | undefined;
    try {
      const body = JSON.parse(text) as { error?: { code?: unknown } };
      if (typeof body.error?.code === 'string') code = body.error.code;
    } catch {
      /* a non-JSON error body: the status alone decides */
    }
    return { ok: false, status: res.status, failure: mapHandshakeFailure(res.status, code) };
  }
  const callId = (res.headers.get('location') ?? '').replace(/\/+$/, '').split('/').pop() ?? '';
  if (!CALL_ID.test(callId) || !text.startsWith('v=')) {
    return { ok: false, status: 502, failure: mapHandshakeFailure(502) };
  }
  return { ok: true, answerSdp: text, callId, setupMs: performance.now() - started };
}

/** `POST {base}/realtime/calls/{id}/hangup`. Resolves whether upstream confirmed (2xx or 404: already gone). */
export async function hangupUpstreamCall(provider: UpstreamProvider, callId: string, timeoutMs: number): Promise<boolean> {
  const t = target(provider, `/realtime/calls/${encodeURIComponent(callId)}/hangup`);
  try {
    const res = await fetch(t.url, { method: 'POST', headers: t.headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
    await res.arrayBuffer().catch(() => undefined);
    return res.ok || res.status === 404;
  } catch {
    return false;
  }
}

/**
 * `wss://{base}/realtime?call_id=…` with the server-side key: the provider's WebSocket target
 * for the model, its query swapped for the call id (Azure GA: `/openai/v1/realtime?call_id=`).
 */
export function sidebandTarget(provider: UpstreamProvider, model: string, callId: string, sessionId: string): UpstreamTarget {
  const t = provider.realtimeTarget(model, sessionId);
  const url = new URL(t.url);
  url.search = '';
  url.searchParams.set('call_id', callId);
  return { url: url.toString(), headers: t.headers };
}
