import type { ApiDialect } from '../config/config';

/** event_id of the relay's own stop update, so an upstream error refusing it is recognised. */
export const BUDGET_STOP_EVENT_ID = 'relay_budget_stop';

/**
 * The session.update the relay sends upstream once a user is over budget: no more automatic
 * turns (server VAD creates responses the relay has no response.create to refuse, and a
 * cancelled response still bills its context) and no more input transcription. Beta keeps both
 * at the top of the session; GA under `audio.input`, and every GA update names `type`.
 */
export function budgetStopUpdate(dialect: ApiDialect): string {
  const session =
    dialect === 'beta'
      ? { turn_detection: null, input_audio_transcription: null }
      : { type: 'realtime', audio: { input: { turn_detection: null, transcription: null } } };
  return JSON.stringify({ type: 'session.update', event_id: BUDGET_STOP_EVENT_ID, session });
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
}

/** What a session.created / session.updated says about automatic spending, in either dialect. */
export function sessionSpending(event: unknown): { transcription: boolean | null; maxOutputTokens: number | null | undefined } {
  const s = obj(obj(event)?.session);
  if (!s) return { transcription: null, maxOutputTokens: undefined };
  const input = obj(obj(s.audio)?.input);
  const t = 'input_audio_transcription' in s ? s.input_audio_transcription : input && 'transcription' in input ? input.transcription : undefined;
  return { transcription: t === undefined ? null : obj(t) !== null, maxOutputTokens: maxOutputTokensOf(s) };
}

/** `max_output_tokens` (GA) or `max_response_output_tokens` (beta): a count, null for "inf", undefined when absent. */
export function maxOutputTokensOf(o: unknown): number | null | undefined {
  const j = obj(o);
  if (!j) return undefined;
  const v = j.max_output_tokens ?? j.max_response_output_tokens;
  if (v === undefined) return undefined;
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : null;
}
