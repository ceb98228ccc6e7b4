import type { Migration, SqlDatabase, SqlValue } from './database';
import { WhereClause } from './where-clause';
import { emptyUsage, type TokenUsage } from '../metering/usage';

/**
 * The usage ledger: one row per billed upstream event (a response, or an input transcription),
 * keyed UNIQUE by (provider, response_id) so a replayed or retried write never counts twice.
 * Money is stored as BIGINT nano-dollars (see metering/money.ts); times as Unix milliseconds.
 */
export const ledgerMigrations: readonly Migration[] = [
  {
    id: 'ledger_001_create',
    sqlite: `
      CREATE TABLE usage_ledger (
        id TEXT PRIMARY KEY,
        response_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        key_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        input_text_tokens INTEGER NOT NULL DEFAULT 0,
        input_audio_tokens INTEGER NOT NULL DEFAULT 0,
        input_image_tokens INTEGER NOT NULL DEFAULT 0,
        cached_text_tokens INTEGER NOT NULL DEFAULT 0,
        cached_audio_tokens INTEGER NOT NULL DEFAULT 0,
        cached_image_tokens INTEGER NOT NULL DEFAULT 0,
        output_text_tokens INTEGER NOT NULL DEFAULT 0,
        output_audio_tokens INTEGER NOT NULL DEFAULT 0,
        audio_duration_ms INTEGER NOT NULL DEFAULT 0,
        cost_nanos INTEGER NOT NULL,
        price_version TEXT NOT NULL,
        price_model TEXT,
        estimated INTEGER NOT NULL DEFAULT 0 CHECK (estimated IN (0, 1)),
        created_at INTEGER NOT NULL,
        UNIQUE (provider, response_id)
      );
      CREATE INDEX usage_ledger_user_time ON usage_ledger (user_id, created_at);
      CREATE INDEX usage_ledger_tenant_time ON usage_ledger (tenant_id, created_at);
      CREATE INDEX usage_ledger_time ON usage_ledger (created_at)`,
    postgres: `
      CREATE TABLE usage_ledger (
        id TEXT PRIMARY KEY,
        response_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        key_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        status TEXT NOT NULL,
        input_text_tokens BIGINT NOT NULL DEFAULT 0,
        input_audio_tokens BIGINT NOT NULL DEFAULT 0,
        input_image_tokens BIGINT NOT NULL DEFAULT 0,
        cached_text_tokens BIGINT NOT NULL DEFAULT 0,
        cached_audio_tokens BIGINT NOT NULL DEFAULT 0,
        cached_image_tokens BIGINT NOT NULL DEFAULT 0,
        output_text_tokens BIGINT NOT NULL DEFAULT 0,
        output_audio_tokens BIGINT NOT NULL DEFAULT 0,
        audio_duration_ms BIGINT NOT NULL DEFAULT 0,
        cost_nanos BIGINT NOT NULL,
        price_version TEXT NOT NULL,
        price_model TEXT,
        estimated BOOLEAN NOT NULL DEFAULT FALSE,
        created_at BIGINT NOT NULL,
        CONSTRAINT usage_ledger_response UNIQUE (provider, response_id)
      );
      CREATE INDEX usage_ledger_user_time ON usage_ledger (user_id, created_at);
      CREATE INDEX usage_ledger_tenant_time ON usage_ledger (tenant_id, created_at);
      CREATE INDEX usage_ledger_time ON usage_ledger (created_at)`,
  },
  {
    // Response ids are only unique within their upstream session: rows are now keyed by
    // `<upstream session>:<response id>` in response_id, and the upstream's own id is kept here.
    // Existing rows keep their unscoped key and get their id copied, so they stay findable.
    id: 'ledger_002_upstream_response_id',
    sqlite: `
      ALTER TABLE usage_ledger ADD COLUMN upstream_response_id TEXT;
      UPDATE usage_ledger SET upstream_response_id = response_id;
      CREATE INDEX usage_ledger_upstream_response ON usage_ledger (provider, upstream_response_id)`,
    postgres: `
      ALTER TABLE usage_ledger ADD COLUMN upstream_response_id TEXT;
      UPDATE usage_ledger SET upstream_response_id = response_id;
      CREATE INDEX usage_ledger_upstream_response ON usage_ledger (provider, upstream_response_id)`,
  },
  {
    // Reasoning tokens, for reporting: already inside output_text_tokens, and billed there once.
    id: 'ledger_003_output_reasoning_tokens',
    sqlite: `ALTER TABLE usage_ledger ADD COLUMN output_reasoning_tokens INTEGER NOT NULL DEFAULT 0`,
    postgres: `ALTER TABLE usage_ledger ADD COLUMN output_reasoning_tokens BIGINT NOT NULL DEFAULT 0`,
  },
  {
    // The model a client asked for when MODEL_ALIASES served another (`model`, billed) in its place.
    id: 'ledger_004_requested_model',
    sqlite: `ALTER TABLE usage_ledger ADD COLUMN requested_model TEXT`,
    postgres: `ALTER TABLE usage_ledger ADD COLUMN requested_model TEXT`,
  },
];

export interface LedgerEntry {
  /** Row id, chosen by the writer so that a spooled copy replays as the same row. */
  id: string;
  /**
   * The row's key within its provider: `<upstream session>:<response id>` for responses (ids are
   * unique only per upstream session), `transcription:<session id>:<item id>` for input
   * transcriptions, `unacknowledged:<session id>:<n>` for requests never acknowledged.
   */
  responseId: string;
  /** The upstream's own response id, when the row is a response; absent on rows spooled before it existed. */
  upstreamResponseId?: string | null;
  sessionId: string;
  user: string;
  tenant: string | null;
  keyId: string | null;
  provider: string;
  model: string;
  status: string;
  usage: TokenUsage;
  costNanos: bigint;
  priceVersion: string;
  /**
   * The price entry actually used. Differs from `model` when the model was unpriced and billed
   * at the configured fallback model; null when nothing could price it (cost 0).
   */
  priceModel: string | null;
  /** The model asked for, when an alias served `model` instead (MODEL_ALIASES); null otherwise. */
  requestedModel?: string | null;
  estimated: boolean;
  /** Unix milliseconds. */
  createdAt: number;
}

/**
 * 'inserted': new row. 'duplicate': a row with that key exists and was kept.
 * 'replaced': an estimated row was overwritten by this exact one — the exact usage wins over
 * an estimate whichever arrives first, and an estimate never overwrites anything.
 */
export type InsertResult = 'inserted' | 'duplicate' | 'replaced';

export interface SpendFilter {
  user?: string;
  /** Absent: any tenant. null (or ''): only rows of no tenant, a namespace of its own. */
  tenant?: string | null;
  /** Inclusive lower bound. */
  since?: Date;
}

export interface UsageFilter {
  user?: string;
  /** Absent: any tenant. null (or ''): only rows of no tenant, a namespace of its own. */
  tenant?: string | null;
  model?: string;
  /** Inclusive. */
  from?: Date;
  /** Exclusive. */
  to?: Date;
}

export type UsageGroupBy = 'day' | 'model' | 'user' | 'key' | 'tenant' | 'session' | null;

export interface UsageTotals {
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
  /** Included in output_text_tokens (reporting only). */
  output_reasoning_tokens: number;
  audio_duration_ms: number;
  cost_nanos: bigint;
}

export interface UsageRow extends UsageTotals {
  /** The UTC day (YYYY-MM-DD), model, user, key id, tenant or session id of the group; null when not grouped (or a row without a key or tenant). */
  key: string | null;
  /** Grouped by user: the user's tenant (null: none), since a user id is unique only within its tenant. */
  tenant?: string | null;
}

/**
 * Whose spend a budget counts: a user within its tenant (null or '': the user of no tenant, never
 * "every tenant's user of that name"), a whole tenant, or one credential (API key id).
 */
export type SpendSubject = { user: string; tenant: string | null } | { tenant: string } | { key: string };

/** Spend over several windows at once, for budget checks. */
export interface SpendSummary {
  daily: bigint;
  monthly: bigint;
  total: bigint;
}

/** The reading side, shared by Ledger and DurableLedger, so routes and guards take either. */
export interface LedgerReader {
  spend(filter: SpendFilter): Promise<bigint>;
  spendSummary(subject: SpendSubject, starts: { daily: Date; monthly: Date }): Promise<SpendSummary>;
  usage(filter: UsageFilter, groupBy?: UsageGroupBy): Promise<UsageRow[]>;
}

const TOKEN_COLUMNS = [
  ['input_text', 'input_text_tokens'],
  ['input_audio', 'input_audio_tokens'],
  ['input_image', 'input_image_tokens'],
  ['cached_text', 'cached_text_tokens'],
  ['cached_audio', 'cached_audio_tokens'],
  ['cached_image', 'cached_image_tokens'],
  ['output_text', 'output_text_tokens'],
  ['output_audio', 'output_audio_tokens'],
  ['output_reasoning', 'output_reasoning_tokens'],
  ['duration_ms', 'audio_duration_ms'],
] as const;

const COLUMNS = [
  'id',
  'response_id',
  'upstream_response_id',
  'session_id',
  'user_id',
  'tenant_id',
  'key_id',
  'provider',
  'model',
  'status',
  ...TOKEN_COLUMNS.map(([, c]) => c),
  'cost_nanos',
  'price_version',
  'price_model',
  'requested_model',
  'estimated',
  'created_at',
];

const INSERT_SQL = `INSERT INTO usage_ledger (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT DO NOTHING`;

// Everything but the key and id: the exact row takes over the estimated one in place.
const REPLACE_COLUMNS = COLUMNS.filter((c) => c !== 'id' && c !== 'provider' && c !== 'response_id' && c !== 'upstream_response_id');
const REPLACE_SQL =
  `UPDATE usage_ledger SET ${REPLACE_COLUMNS.map((c, i) => `${c} = $${i + 1}`).join(', ')} ` +
  `WHERE provider = $${REPLACE_COLUMNS.length + 1} AND response_id = $${REPLACE_COLUMNS.length + 2} AND estimated = $${REPLACE_COLUMNS.length + 3}`;

function values(e: LedgerEntry): Record<string, SqlValue> {
  const v: Record<string, SqlValue> = {
    id: e.id,
    response_id: e.responseId,
    upstream_response_id: e.upstreamResponseId ?? null,
    session_id: e.sessionId,
    user_id: e.user,
    tenant_id: e.tenant,
    key_id: e.keyId,
    provider: e.provider,
    model: e.model,
    status: e.status,
    cost_nanos: e.costNanos,
    price_version: e.priceVersion,
    price_model: e.priceModel,
    requested_model: e.requestedModel ?? null,
    estimated: e.estimated,
    created_at: e.createdAt,
  };
  // `?? 0`: a spooled entry written before a column existed replays with it at zero.
  for (const [field, column] of TOKEN_COLUMNS) v[column] = e.usage[field] ?? 0;
  return v;
}

/** Sums come back as text from both backends (PostgreSQL numeric, SQLite CAST) and become exact bigints. */
const sumText = (expr: string): string => `CAST(COALESCE(SUM(${expr}), 0) AS TEXT)`;

function toBigInt(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw new TypeError(`not an integer: ${String(v)}`);
}

function toNumber(v: unknown): number {
  const n = toBigInt(v);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`token total ${n} exceeds 2^53`);
  return Number(n);
}

export class Ledger implements LedgerReader {
  constructor(private readonly db: SqlDatabase) {}

  /** Inserts a row unless its (provider, response_id) exists; an exact row replaces an estimate. */
  async insert(entry: LedgerEntry): Promise<InsertResult> {
    const v = values(entry);
    const inserted = await this.db.run(INSERT_SQL, COLUMNS.map((c) => v[c]));
    if (inserted > 0) return 'inserted';
    if (entry.estimated) return 'duplicate';
    const params = [...REPLACE_COLUMNS.map((c) => v[c]), entry.provider, entry.responseId, true];
    const replaced = await this.db.run(REPLACE_SQL, params);
    return replaced > 0 ? 'replaced' : 'duplicate';
  }

  /** The row keyed `responseId`, else the first row of that upstream response id (from any upstream session). */
  async find(provider: string, responseId: string): Promise<LedgerEntry | null> {
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT ${COLUMNS.map((c) => (c === 'cost_nanos' ? 'CAST(cost_nanos AS TEXT) AS cost_nanos' : c)).join(', ')}
       FROM usage_ledger WHERE provider = $1 AND (response_id = $2 OR upstream_response_id = $2)
       ORDER BY CASE WHEN response_id = $2 THEN 0 ELSE 1 END, created_at, id LIMIT 1`,
      [provider, responseId],
    );
    const r = rows[0];
    if (!r) return null;
    const usage = emptyUsage();
    for (const [field, column] of TOKEN_COLUMNS) usage[field] = toNumber(r[column]);
    return {
      id: String(r.id),
      responseId: String(r.response_id),
      ...(r.upstream_response_id === null || r.upstream_response_id === undefined ? {} : { upstreamResponseId: String(r.upstream_response_id) }),
      sessionId: String(r.session_id),
      user: String(r.user_id),
      tenant: r.tenant_id === null ? null : String(r.tenant_id),
      keyId: r.key_id === null ? null : String(r.key_id),
      provider: String(r.provider),
      model: String(r.model),
      status: String(r.status),
      usage,
      costNanos: toBigInt(r.cost_nanos),
      priceVersion: String(r.price_version),
      priceModel: r.price_model === null ? null : String(r.price_model),
      ...(r.requested_model === null || r.requested_model === undefined ? {} : { requestedModel: String(r.requested_model) }),
      estimated: r.estimated === true || r.estimated === 1,
      createdAt: toNumber(r.created_at),
    };
  }

  async spend(filter: SpendFilter): Promise<bigint> {
    const where = new WhereClause().add('user_id', '=', filter.user).addTenant('tenant_id', filter.tenant).add('created_at', '>=', filter.since?.getTime());
    const rows = await this.db.query<{ spend: unknown }>(`SELECT ${sumText('cost_nanos')} AS spend FROM usage_ledger${where}`, where.params);
    return toBigInt(rows[0]?.spend ?? '0');
  }

  /** Daily, monthly and all-time spend of one user (within its tenant), tenant or key in one indexed scan. */
  async spendSummary(subject: SpendSubject, starts: { daily: Date; monthly: Date }): Promise<SpendSummary> {
    // A user is named within its tenant: filter on both (the user_id index narrows the scan).
    const [where, params] =
      'user' in subject
        ? [`user_id = $1 AND COALESCE(tenant_id, '') = $4`, [subject.user, subject.tenant ?? '']]
        : 'tenant' in subject
          ? ['tenant_id = $1', [subject.tenant]]
          : ['key_id = $1', [subject.key]];
    const rows = await this.db.query<{ daily: unknown; monthly: unknown; total: unknown }>(
      `SELECT ${sumText('CASE WHEN created_at >= $2 THEN cost_nanos ELSE 0 END')} AS daily,
              ${sumText('CASE WHEN created_at >= $3 THEN cost_nanos ELSE 0 END')} AS monthly,
              ${sumText('cost_nanos')} AS total
       FROM usage_ledger WHERE ${where}`,
      [params[0], starts.daily.getTime(), starts.monthly.getTime(), ...params.slice(1)],
    );
    const r = rows[0];
    return { daily: toBigInt(r?.daily ?? '0'), monthly: toBigInt(r?.monthly ?? '0'), total: toBigInt(r?.total ?? '0') };
  }

  async usage(filter: UsageFilter, groupBy: UsageGroupBy = null): Promise<UsageRow[]> {
    const where = new WhereClause()
      .add('user_id', '=', filter.user)
      .addTenant('tenant_id', filter.tenant)
      .add('model', '=', filter.model)
      .add('created_at', '>=', filter.from?.getTime())
      .add('created_at', '<', filter.to?.getTime());

    const key = this.groupExpression(groupBy);
    const byUser = groupBy === 'user';
    const select = [
      `${key} AS group_key`,
      // Two tenants may each have an "alice": grouping by user groups by (tenant, user).
      ...(byUser ? ["COALESCE(tenant_id, '') AS group_tenant"] : []),
      'CAST(COUNT(*) AS TEXT) AS responses',
      `${sumText('CASE WHEN estimated THEN 1 ELSE 0 END')} AS estimated_responses`,
      ...TOKEN_COLUMNS.map(([, c]) => `${sumText(c)} AS ${c}`),
      `${sumText('cost_nanos')} AS cost_nanos`,
    ];
    const grouped = groupBy !== null;
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT ${select.join(', ')} FROM usage_ledger${where}` + (byUser ? ' GROUP BY 1, 2 ORDER BY 1, 2' : grouped ? ' GROUP BY 1 ORDER BY 1' : ''),
      where.params,
    );
    return rows.map((r) => ({
      key: grouped && r.group_key !== null && r.group_key !== undefined ? String(r.group_key) : null,
      ...(byUser ? { tenant: r.group_tenant === null || r.group_tenant === undefined || r.group_tenant === '' ? null : String(r.group_tenant) } : {}),
      responses: toNumber(r.responses),
      estimated_responses: toNumber(r.estimated_responses),
      input_text_tokens: toNumber(r.input_text_tokens),
      input_audio_tokens: toNumber(r.input_audio_tokens),
      input_image_tokens: toNumber(r.input_image_tokens),
      cached_text_tokens: toNumber(r.cached_text_tokens),
      cached_audio_tokens: toNumber(r.cached_audio_tokens),
      cached_image_tokens: toNumber(r.cached_image_tokens),
      output_text_tokens: toNumber(r.output_text_tokens),
      output_audio_tokens: toNumber(r.output_audio_tokens),
      output_reasoning_tokens: toNumber(r.output_reasoning_tokens),
      audio_duration_ms: toNumber(r.audio_duration_ms),
      cost_nanos: toBigInt(r.cost_nanos),
    }));
  }

  private groupExpression(groupBy: UsageGroupBy): string {
    switch (groupBy) {
      case 'day':
        return this.db.dialect === 'postgres'
          ? `to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')`
          : `strftime('%Y-%m-%d', created_at / 1000, 'unixepoch')`;
      case 'model':
        return 'model';
      case 'user':
        return 'user_id';
      case 'key':
        return 'key_id';
      case 'tenant':
        return 'tenant_id';
      case 'session':
        return 'session_id';
      default:
        return 'NULL';
    }
  }
}
