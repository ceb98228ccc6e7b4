import type { RelayInstance } from '../../support/relay-instance';

export interface UsageRowView {
  key: string | null;
  responses: number;
  estimated_responses: number;
  input_text_tokens: number;
  input_audio_tokens: number;
  cached_text_tokens: number;
  cached_audio_tokens: number;
  output_text_tokens: number;
  output_audio_tokens: number;
  cost_usd: string;
}

export interface UsageReport {
  object: 'usage.report';
  data: UsageRowView[];
  total: Omit<UsageRowView, 'key'>;
}

/** The usage block of a response.done, as far as these tests read it (both SDKs' shapes fit). */
export interface ResponseUsageLike {
  input_token_details?: { audio_tokens?: number; text_tokens?: number };
  output_token_details?: { audio_tokens?: number; text_tokens?: number };
}

export function usageOf(usages: ResponseUsageLike[]): { inputAudio: number; inputText: number; outputAudio: number; outputText: number } {
  const sum = { inputAudio: 0, inputText: 0, outputAudio: 0, outputText: 0 };
  for (const u of usages) {
    sum.inputAudio += u.input_token_details?.audio_tokens ?? 0;
    sum.inputText += u.input_token_details?.text_tokens ?? 0;
    sum.outputAudio += u.output_token_details?.audio_tokens ?? 0;
    sum.outputText += u.output_token_details?.text_tokens ?? 0;
  }
  return sum;
}

/**
 * Polls `GET /v1/usage?group_by=model` with the user's key until `ready` holds: ledger rows are
 * written after response.done is forwarded, so they may land a moment after the client saw it.
 */
export async function waitForUsage(relay: RelayInstance, key: string, ready: (r: UsageReport) => boolean, timeoutMs = 5000): Promise<UsageReport> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await relay.request<UsageReport>('GET', '/v1/usage?group_by=model', { headers: { authorization: `Bearer ${key}` } });
    if (res.status !== 200) throw new Error(`GET /v1/usage answered ${res.status}: ${JSON.stringify(res.body)}`);
    if (ready(res.body)) return res.body;
    if (Date.now() > deadline) throw new Error(`usage never became ready: ${JSON.stringify(res.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
