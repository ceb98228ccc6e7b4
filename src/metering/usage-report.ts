import type { UsageGroupBy, UsageRow, UsageTotals } from '../storage/ledger';
import { formatUsd } from './money';

/** The counted columns of a usage report, in the order both the API and the CLI present them. */
export const USAGE_COUNT_FIELDS = [
  'responses',
  'estimated_responses',
  'input_text_tokens',
  'input_audio_tokens',
  'input_image_tokens',
  'cached_text_tokens',
  'cached_audio_tokens',
  'cached_image_tokens',
  'output_text_tokens',
  'output_audio_tokens',
  'audio_duration_ms',
  // Last, so existing CSV columns keep their positions; a part of output_text_tokens.
  'output_reasoning_tokens',
] as const;

export function sumUsageRows(rows: readonly UsageRow[]): UsageTotals {
  const total: UsageTotals = {
    responses: 0,
    estimated_responses: 0,
    input_text_tokens: 0,
    input_audio_tokens: 0,
    input_image_tokens: 0,
    cached_text_tokens: 0,
    cached_audio_tokens: 0,
    cached_image_tokens: 0,
    output_text_tokens: 0,
    output_audio_tokens: 0,
    output_reasoning_tokens: 0,
    audio_duration_ms: 0,
    cost_nanos: 0n,
  };
  for (const r of rows) {
    for (const f of USAGE_COUNT_FIELDS) total[f] += r[f];
    total.cost_nanos += r.cost_nanos;
  }
  return total;
}

/** Totals as JSON: counts as numbers, cost as a decimal dollar string (exact, never a float). */
export function usageTotalsView(t: UsageTotals): Record<string, number | string> {
  const out: Record<string, number | string> = {};
  for (const f of USAGE_COUNT_FIELDS) out[f] = t[f];
  out.cost_usd = formatUsd(t.cost_nanos);
  return out;
}

export function csvCell(v: string | number | null): string {
  if (v === null) return '';
  let s = String(v);
  // A spreadsheet runs a cell starting with = + - @ as a formula; ids come from users.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/**
 * RFC 4180 CSV of a usage report, one row per group. Grouped by user, a `tenant` column follows
 * the user: a user id is unique only within its tenant.
 */
export function usageCsv(groupBy: UsageGroupBy, rows: readonly UsageRow[]): string {
  const byUser = groupBy === 'user';
  const header = [groupBy ?? 'key', ...(byUser ? ['tenant'] : []), ...USAGE_COUNT_FIELDS, 'cost_usd'];
  const lines = [header.join(',')];
  for (const r of rows) {
    lines.push([csvCell(r.key), ...(byUser ? [csvCell(r.tenant ?? null)] : []), ...USAGE_COUNT_FIELDS.map((f) => csvCell(r[f])), csvCell(formatUsd(r.cost_nanos))].join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
