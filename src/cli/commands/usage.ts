/**
 * `realtime-relay usage`: the ledger's usage report, read straight from the database. Same
 * numbers, JSON shape and CSV dialect as `GET /admin/usage`, so a report can be pulled with or
 * without a running relay. Rows still in a relay's on-disk spool (database outage) are not in
 * the database yet, hence not here either.
 */
import { formatUsd } from '../../metering/money';
import { sumUsageRows, USAGE_COUNT_FIELDS, usageCsv, usageTotalsView } from '../../metering/usage-report';
import { Ledger, type UsageFilter, type UsageGroupBy, type UsageTotals } from '../../storage/ledger';
import { EXIT, parseCommand, parseDateOption, UsageError, wantsHelp, type CliIo } from '../context';
import { withRelayDatabase } from '../database';
import { json, table, type Column } from '../format';

export const USAGE_HELP = `Usage: realtime-relay usage [options]

Reports billed usage from the ledger in the database named by DATABASE_URL.
Costs are exact decimal USD (nine decimals); days are UTC. The table shortens the column
names (IN_TEXT = input_text_tokens…); --csv and --json use the full ones.

Options:
  --user USER              Only this user (all users when omitted)
  --tenant TENANT          Only this tenant
  --model MODEL            Only this model
  --from DATE              From this day (YYYY-MM-DD) or ISO timestamp, inclusive
  --to DATE                Through this day (YYYY-MM-DD, inclusive) or until an ISO timestamp
  --group-by day|model|user|key|tenant|session
                           One row per UTC day, model, user, API key, tenant or session; one total row when omitted
  --csv                    Print CSV (the usage API's CSV)
  --json                   Print JSON (the usage API's report object)
  -h, --help               Show this help
`;

const COUNT_FIELDS = USAGE_COUNT_FIELDS;

/** Table headers: the field names without their unit suffix, so the table fits a wide terminal. */
const HEADERS: Record<(typeof COUNT_FIELDS)[number], string> = {
  responses: 'RESPONSES',
  estimated_responses: 'ESTIMATED',
  input_text_tokens: 'IN_TEXT',
  input_audio_tokens: 'IN_AUDIO',
  input_image_tokens: 'IN_IMAGE',
  cached_text_tokens: 'CACHED_TEXT',
  cached_audio_tokens: 'CACHED_AUDIO',
  cached_image_tokens: 'CACHED_IMAGE',
  output_text_tokens: 'OUT_TEXT',
  output_audio_tokens: 'OUT_AUDIO',
  output_reasoning_tokens: 'OUT_REASONING',
  audio_duration_ms: 'AUDIO_MS',
};

const GROUPS = ['day', 'model', 'user', 'key', 'tenant', 'session'] as const;

const sum = sumUsageRows;
const totalsView = usageTotalsView;

function cells(label: string, t: UsageTotals): string[] {
  return [label, ...COUNT_FIELDS.map((f) => String(t[f])), formatUsd(t.cost_nanos)];
}

export async function usageCommand(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(USAGE_HELP);
    return EXIT.ok;
  }
  const { values } = parseCommand(argv, {
    options: {
      user: { type: 'string' },
      tenant: { type: 'string' },
      model: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'group-by': { type: 'string' },
      csv: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.csv && values.json) throw new UsageError('--csv and --json exclude each other');
  const groupRaw = values['group-by'];
  if (groupRaw !== undefined && !(GROUPS as readonly string[]).includes(groupRaw)) {
    throw new UsageError(`--group-by must be one of ${GROUPS.join(', ')}, got '${groupRaw}'`);
  }
  const groupBy = (groupRaw ?? null) as UsageGroupBy;
  for (const option of ['user', 'tenant', 'model'] as const) {
    if (values[option] !== undefined && values[option].trim() === '') throw new UsageError(`--${option} must not be empty`);
  }
  const from = values.from === undefined ? undefined : parseDateOption(values.from, '--from').date;
  let to: Date | undefined;
  if (values.to !== undefined) {
    const parsed = parseDateOption(values.to, '--to');
    // A date names a whole day: through its end, as the usage API reads it.
    to = parsed.dateOnly ? new Date(parsed.date.getTime() + 86_400_000) : parsed.date;
  }
  if (from && to && from.getTime() >= to.getTime()) throw new UsageError('--from must be before --to');

  const filter: UsageFilter = { user: values.user, tenant: values.tenant, model: values.model, from, to };
  const rows = await withRelayDatabase(io, (db) => new Ledger(db).usage(filter, groupBy));
  const total = sum(rows);

  if (values.csv) {
    io.stdout(usageCsv(groupBy, rows));
    return EXIT.ok;
  }
  if (values.json) {
    io.stdout(
      json({
        object: 'usage.report',
        user: filter.user ?? null,
        tenant: filter.tenant ?? null,
        model: filter.model ?? null,
        from: from?.toISOString() ?? null,
        to: to?.toISOString() ?? null,
        group_by: groupBy,
        data: rows.map((r) => ({ key: r.key, ...(r.tenant !== undefined ? { tenant: r.tenant } : {}), ...totalsView(r) })),
        total: totalsView(total),
      }),
    );
    return EXIT.ok;
  }
  const columns: Column[] = [
    { header: (groupBy ?? '').toUpperCase() },
    ...COUNT_FIELDS.map((f): Column => ({ header: HEADERS[f], align: 'right' })),
    { header: 'COST_USD', align: 'right' },
  ];
  const body = groupBy === null ? [cells('total', total)] : [...rows.map((r) => cells(r.tenant ? `${r.key ?? '-'} (${r.tenant})` : (r.key ?? '-'), r)), cells('total', total)];
  io.stdout(table(columns, body));
  return EXIT.ok;
}
