/**
 * `realtime-relay budgets list|show|set`: budget overrides straight on the database, through
 * the same BudgetStore and BudgetGuard as `PUT|GET /admin/budgets/:scope/:id`, so limits set
 * here are the ones every relay instance on that database enforces, and `show` prints the
 * admin API's own object (limits in force, which are overrides, spend per UTC period).
 */
import { BudgetGuard } from '../../metering/budget-guard';
import { formatUsd, MoneyError, parseUsd } from '../../metering/money';
import { budgetView } from '../../routes/admin-budgets';
import { BUDGET_PERIODS, BudgetStore, type BudgetLimits, type BudgetPatch, type BudgetScope } from '../../storage/budgets';
import { Ledger } from '../../storage/ledger';
import { asCommand, EXIT, parseCommand, UsageError, wantsHelp, type CliIo } from '../context';
import { withRelayDatabase } from '../database';
import { fields, json, table } from '../format';

export const BUDGETS_HELP = `Usage: realtime-relay budgets <subcommand> [options]

Budget overrides per user or tenant, directly in the database named by DATABASE_URL (the same
limits as PUT /admin/budgets/:scope/:id). Amounts are decimal USD, up to nine decimals.

Subcommands:
  list      List the stored overrides
  show      Show a user's or tenant's limits in force and spend
  set       Set or clear a user's or tenant's limits

Run 'realtime-relay budgets <subcommand> --help' for its options.
`;

export const BUDGETS_LIST_HELP = `Usage: realtime-relay budgets list [--scope user|tenant|key] [--json]

Lists the stored budget overrides (defaults from DEFAULT_BUDGET_*_USD are not rows).

Options:
  --scope SCOPE        Only user, tenant or key overrides
  --json               Print JSON
  -h, --help           Show this help
`;

export const BUDGETS_SHOW_HELP = `Usage: realtime-relay budgets show <user|tenant|key> <id> [--tenant T] [--json]

Shows the limits in force (override, else the configured default), which are overrides, and
the spend of the current UTC day and month and in total.

Options:
  --tenant T           The user's tenant (a user is named within its tenant; without it, the user of no tenant)
  --json               Print the admin API's budget object
  -h, --help           Show this help
`;

export const BUDGETS_SET_HELP = `Usage: realtime-relay budgets set <user|tenant|key> <id> [--tenant T] [--daily USD] [--monthly USD] [--total USD] [--json]

Sets the given periods; 'none' clears that period's override (a user then falls back to the
configured default). Periods not given are left as they are.

Options:
  --tenant T           The user's tenant (a user is named within its tenant; without it, the user of no tenant)
  --daily USD          Limit per UTC day, e.g. 5 or 2.50, or none
  --monthly USD        Limit per UTC month, or none
  --total USD          Limit over all time, or none
  --json               Print the admin API's budget object
  -h, --help           Show this help
`;

const SCOPES: readonly BudgetScope[] = ['user', 'tenant', 'key'];
const ID_MAX = 256;

function scopeOf(text: string | undefined): BudgetScope {
  if (text === undefined) throw new UsageError('the scope (user, tenant or key) is required');
  if (!(SCOPES as readonly string[]).includes(text)) throw new UsageError(`the scope must be user, tenant or key, got '${text}'`);
  return text as BudgetScope;
}

/** A user's tenant from --tenant; refused for tenant and key budgets, which have none. */
function tenantOf(scope: BudgetScope, tenant: string | undefined): string | null {
  if (tenant === undefined) return null;
  if (scope !== 'user') throw new UsageError('--tenant applies to user budgets only');
  return tenant;
}

function subjectOf(positionals: string[]): { scope: BudgetScope; id: string } {
  if (positionals.length !== 2) throw new UsageError('give the scope and the id, e.g. user alice');
  const scope = scopeOf(positionals[0]);
  const id = positionals[1];
  if (id.trim() === '' || id.length > ID_MAX) throw new UsageError(`the id must be 1-${ID_MAX} characters`);
  return { scope, id };
}

function amountOf(text: string, option: string): bigint | null {
  if (text === 'none') return null;
  // The admin API's pattern: at most 12 integer digits and 9 decimals.
  if (!/^\d{1,12}(\.\d{1,9})?$/.test(text)) throw new UsageError(`${option} must be a USD amount such as 5 or 2.50 (up to nine decimals), or none; got '${text}'`);
  try {
    return parseUsd(text);
  } catch (err) {
    if (err instanceof MoneyError) throw new UsageError(`${option}: ${err.message}`);
    throw err;
  }
}

const usdOrDash = (v: bigint | null): string => (v === null ? '-' : formatUsd(v));
const limitsRow = (l: BudgetLimits): string[] => BUDGET_PERIODS.map((p) => usdOrDash(l[p]));

async function show(scope: BudgetScope, id: string, tenant: string | null, asJson: boolean, io: CliIo): Promise<number> {
  const status = await withRelayDatabase(io, (db, config) =>
    new BudgetGuard({ budgets: new BudgetStore(db), ledger: new Ledger(db), defaults: config.budgets.defaults }).status(scope, id, tenant),
  );
  if (asJson) {
    io.stdout(json(budgetView(status, tenant)));
    return EXIT.ok;
  }
  const line = (p: (typeof BUDGET_PERIODS)[number]): string => {
    const limit = status.limits[p];
    const origin = limit === null ? '' : status.overrides[p] !== null ? ' (override)' : ' (default)';
    return `limit ${limit === null ? 'none' : `$${formatUsd(limit)}`}${origin}, spent $${formatUsd(status.spent[p])}`;
  };
  io.stdout(`Budget of ${scope} ${id}${tenant === null ? '' : ` of tenant ${tenant}`}:\n` + fields(BUDGET_PERIODS.map((p) => [p, line(p)] as const)));
  return EXIT.ok;
}

async function list(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(BUDGETS_LIST_HELP);
    return EXIT.ok;
  }
  const { values } = parseCommand(argv, { options: { scope: { type: 'string' }, json: { type: 'boolean', default: false } } });
  const scope = values.scope === undefined ? undefined : scopeOf(values.scope);
  const rows = await withRelayDatabase(io, (db) => new BudgetStore(db).list(scope));
  if (values.json) {
    io.stdout(
      json(
        rows.map((r) => ({
          scope: r.scope,
          id: r.subject,
          tenant: r.tenant,
          daily_usd: r.limits.daily === null ? null : formatUsd(r.limits.daily),
          monthly_usd: r.limits.monthly === null ? null : formatUsd(r.limits.monthly),
          total_usd: r.limits.total === null ? null : formatUsd(r.limits.total),
        })),
      ),
    );
    return EXIT.ok;
  }
  if (rows.length === 0) {
    io.stdout('No budget overrides.\n');
    return EXIT.ok;
  }
  io.stdout(
    table(
      [{ header: 'SCOPE' }, { header: 'ID' }, { header: 'TENANT' }, { header: 'DAILY_USD', align: 'right' }, { header: 'MONTHLY_USD', align: 'right' }, { header: 'TOTAL_USD', align: 'right' }],
      rows.map((r) => [r.scope, r.subject, r.tenant ?? '-', ...limitsRow(r.limits)]),
    ),
  );
  return EXIT.ok;
}

async function showCommand(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(BUDGETS_SHOW_HELP);
    return EXIT.ok;
  }
  const { values, positionals } = parseCommand(argv, { options: { tenant: { type: 'string' }, json: { type: 'boolean', default: false } }, allowPositionals: true });
  const { scope, id } = subjectOf(positionals);
  return show(scope, id, tenantOf(scope, values.tenant), values.json, io);
}

async function set(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(BUDGETS_SET_HELP);
    return EXIT.ok;
  }
  const { values, positionals } = parseCommand(argv, {
    options: { tenant: { type: 'string' }, daily: { type: 'string' }, monthly: { type: 'string' }, total: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  const { scope, id } = subjectOf(positionals);
  const tenant = tenantOf(scope, values.tenant);
  const patch: BudgetPatch = {};
  for (const period of BUDGET_PERIODS) {
    const v = values[period];
    if (v !== undefined) patch[period] = amountOf(v, `--${period}`);
  }
  if (Object.keys(patch).length === 0) throw new UsageError('give at least one of --daily, --monthly, --total');
  await withRelayDatabase(io, (db) => new BudgetStore(db).update(scope, id, patch, tenant));
  return show(scope, id, tenant, values.json, io);
}

const SUBCOMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = { list, show: showCommand, set };

export async function budgetsCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) {
    io.stderr(BUDGETS_HELP);
    return EXIT.usage;
  }
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout(BUDGETS_HELP);
    return EXIT.ok;
  }
  const run = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!run) throw new UsageError(`unknown subcommand '${sub}' (list, show, set)`);
  return asCommand(`budgets ${sub}`, () => run(rest, io));
}
