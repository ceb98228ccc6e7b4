import type { SessionRecord } from '../storage/sessions';
import { formatUsd } from './money';
import { csvCell, USAGE_COUNT_FIELDS } from './usage-report';

/** One spend-log row as the API shows it: times as ISO strings, cost as a decimal USD string. */
export interface SessionView {
  object: 'relay.session';
  id: string;
  user: string;
  tenant: string | null;
  key_id: string | null;
  provider: string;
  model: string;
  transport: string;
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  close_code: number | null;
  end_reason: string | null;
  responses: number;
  estimated_responses: number;
  input_text_tokens: number;
  input_audio_tokens: number;
  input_image_tokens: number;
  cached_text_tokens: number;
  cached_audio_tokens: number;
  cached_image_tokens: number;
  output_text_tokens: number;
  output_audio_tokens: number;
  audio_duration_ms: number;
  output_reasoning_tokens: number;
  cost_usd: string;
}

export function sessionView(r: SessionRecord): SessionView {
  const t = r.totals;
  return {
    object: 'relay.session',
    id: r.id,
    user: r.user,
    tenant: r.tenant,
    key_id: r.keyId,
    provider: r.provider,
    model: r.model,
    transport: r.transport,
    started_at: new Date(r.startedAt).toISOString(),
    ended_at: r.endedAt === null ? null : new Date(r.endedAt).toISOString(),
    duration_ms: r.durationMs,
    close_code: r.closeCode,
    end_reason: r.endReason,
    responses: t.responses,
    estimated_responses: t.estimated_responses,
    input_text_tokens: t.input_text_tokens,
    input_audio_tokens: t.input_audio_tokens,
    input_image_tokens: t.input_image_tokens,
    cached_text_tokens: t.cached_text_tokens,
    cached_audio_tokens: t.cached_audio_tokens,
    cached_image_tokens: t.cached_image_tokens,
    output_text_tokens: t.output_text_tokens,
    output_audio_tokens: t.output_audio_tokens,
    audio_duration_ms: t.audio_duration_ms,
    output_reasoning_tokens: t.output_reasoning_tokens,
    cost_usd: formatUsd(t.cost_nanos),
  };
}

export const SESSION_CSV_COLUMNS = [
  'id',
  'user',
  'tenant',
  'key_id',
  'provider',
  'model',
  'transport',
  'started_at',
  'ended_at',
  'duration_ms',
  'close_code',
  'end_reason',
  ...USAGE_COUNT_FIELDS,
  'cost_usd',
] as const;

/** RFC 4180 CSV of a page of the spend log. */
export function sessionsCsv(rows: readonly SessionView[]): string {
  const lines = [SESSION_CSV_COLUMNS.join(',')];
  for (const r of rows) lines.push(SESSION_CSV_COLUMNS.map((c) => csvCell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
