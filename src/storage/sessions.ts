import type { Migration, SqlDatabase, SqlValue } from './database';
import { WhereClause } from './where-clause';

/**
 * The spend log: one row per WebSocket session or WebRTC call (`transport`), written when it
 * starts and completed when it ends. What it cost is not stored here: the totals come from the
 * ledger rows carrying the same session_id, read at query time, so a usage row that reaches the
 * ledger late (from the spool, or an exact report replacing an estimate) is never missing from
 * the log nor counted twice in it.
 */
export const sessionLogMigrations: readonly Migration[] = [
  {
    id: 'sessions_001_create',
    sqlite: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        key_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        transport TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        duration_ms INTEGER,
        close_code INTEGER,
        end_reason TEXT
      );
      CREATE INDEX sessions_started ON sessions (started_at, id);
      CREATE INDEX sessions_user_started ON sessions (user_id, started_at);
      CREATE INDEX sessions_tenant_started ON sessions (tenant_id, started_at);
      CREATE INDEX sessions_key_started ON sessions (key_id, started_at);
      CREATE INDEX usage_ledger_session ON usage_ledger (session_id)`,
    postgres: `
      CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        key_id TEXT,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        transport TEXT NOT NULL,
        started_at BIGINT NOT NULL,
        ended_at BIGINT,
        duration_ms BIGINT,
        close_code INTEGER,
        end_reason TEXT
      );
      CREATE INDEX sessions_started ON sessions (started_at, id);
      CREATE INDEX sessions_user_started ON sessions (user_id, started_at);
      CREATE INDEX sessions_tenant_started ON sessions (tenant_id, started_at);
      CREATE INDEX sessions_key_started ON sessions (key_id, started_at);
      CREATE INDEX usage_ledger_session ON usage_ledger (session_id)`,
  },
];

/** 'websocket' for /v1/realtime; 'webrtc' for calls; other transports slot in as new values. */
export type SessionTransport = 'websocket' | 'webrtc' | (string & {});

export interface SessionStart {
  id: string;
  user: string;
  tenant: string | null;
  keyId: string | null;
  provider: string;
  model: string;
  transport: SessionTransport;
  /** Unix milliseconds. */
  startedAt: number;
}

export interface SessionEnd {
  endedAt: number;
  durationMs: number;
  closeCode: number | null;
  endReason: string;
}

export interface SessionTotals {
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
  cost_nanos: bigint;
}

export interface SessionRecord extends SessionStart {
  endedAt: number | null;
  durationMs: number | null;
  closeCode: number | null;
  endReason: string | null;
  totals: SessionTotals;
}

export interface SessionFilter {
  user?: string;
  /** null: only sessions without a tenant. */
  tenant?: string | null;
  keyId?: string;
  model?: string;
  transport?: string;
  /** Started at or after (inclusive). */
  from?: Date;
  /** Started before (exclusive). */
  to?: Date;
}

/** Position after the last row of a page: rows are ordered newest first by (started_at, id). */
export interface SessionCursor {
  startedAt: number;
  id: string;
}

export const TOTAL_COLUMNS = [
  'input_text_tokens',
  'input_audio_tokens',
  'input_image_tokens',
  'cached_text_tokens',
  'cached_audio_tokens',
  'cached_image_tokens',
  'output_text_tokens',
  'output_audio_tokens',
  'audio_duration_ms',
  'output_reasoning_tokens',
] as const;

export function emptyTotals(): SessionTotals {
  return {
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
    audio_duration_ms: 0,
    output_reasoning_tokens: 0,
    cost_nanos: 0n,
  };
}

const sumText = (expr: string): string => `CAST(COALESCE(SUM(${expr}), 0) AS TEXT)`;
const int = (v: unknown): number => Number(String(v));
const nullableInt = (v: unknown): number | null => (v === null || v === undefined ? null : int(v));
const nullableText = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

/** Encodes a cursor as an opaque URL-safe token. */
export function encodeCursor(c: SessionCursor): string {
  return Buffer.from(`${c.startedAt}:${c.id}`, 'utf8').toString('base64url');
}

/** Decodes a cursor; null when the token was not made by encodeCursor. */
export function decodeCursor(token: string): SessionCursor | null {
  const text = Buffer.from(token, 'base64url').toString('utf8');
  const m = /^(\d{1,16}):([A-Za-z0-9_-]{1,200})$/.exec(text);
  return m ? { startedAt: Number(m[1]), id: m[2] } : null;
}

export class SessionLogStore {
  constructor(private readonly db: SqlDatabase) {}

  /** Records a session as it starts; a repeated start of the same id is ignored. */
  async start(s: SessionStart): Promise<void> {
    await this.db.run(
      `INSERT INTO sessions (id, user_id, tenant_id, key_id, provider, model, transport, started_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`,
      [s.id, s.user, s.tenant, s.keyId, s.provider, s.model, s.transport, s.startedAt],
    );
  }

  /** Completes a started session; only the first end counts. */
  async end(id: string, e: SessionEnd): Promise<void> {
    await this.db.run(
      'UPDATE sessions SET ended_at = $2, duration_ms = $3, close_code = $4, end_reason = $5 WHERE id = $1 AND ended_at IS NULL',
      [id, e.endedAt, e.durationMs, e.closeCode, e.endReason],
    );
  }

  /** A page of sessions, newest first, with their totals from the ledger. */
  async list(filter: SessionFilter, page: { limit: number; after?: SessionCursor }): Promise<{ rows: SessionRecord[]; next: SessionCursor | null }> {
    const where = new WhereClause()
      .add('user_id', '=', filter.user)
      .add('tenant_id', '=', filter.tenant ?? undefined)
      .add('key_id', '=', filter.keyId)
      .add('model', '=', filter.model)
      .add('transport', '=', filter.transport)
      .add('started_at', '>=', filter.from?.getTime())
      .add('started_at', '<', filter.to?.getTime());
    let sql = `SELECT id, user_id, tenant_id, key_id, provider, model, transport, started_at, ended_at, duration_ms, close_code, end_reason FROM sessions${where}`;
    const params: SqlValue[] = [...where.params];
    let conditions = where.params.length;
    if (filter.tenant === null) {
      sql += `${conditions++ > 0 ? ' AND' : ' WHERE'} tenant_id IS NULL`;
    }
    if (page.after) {
      params.push(page.after.startedAt, page.after.id);
      const t = `$${params.length - 1}`;
      const i = `$${params.length}`;
      sql += `${conditions > 0 ? ' AND' : ' WHERE'} (started_at < ${t} OR (started_at = ${t} AND id < ${i}))`;
    }
    params.push(page.limit + 1);
    sql += ` ORDER BY started_at DESC, id DESC LIMIT $${params.length}`;
    const raw = await this.db.query<Record<string, unknown>>(sql, params);
    const more = raw.length > page.limit;
    const pageRows = raw.slice(0, page.limit);
    const totals = await this.totals(pageRows.map((r) => String(r.id)));
    const rows = pageRows.map((r): SessionRecord => {
      const id = String(r.id);
      return {
        id,
        user: String(r.user_id),
        tenant: nullableText(r.tenant_id),
        keyId: nullableText(r.key_id),
        provider: String(r.provider),
        model: String(r.model),
        transport: String(r.transport),
        startedAt: int(r.started_at),
        endedAt: nullableInt(r.ended_at),
        durationMs: nullableInt(r.duration_ms),
        closeCode: nullableInt(r.close_code),
        endReason: nullableText(r.end_reason),
        totals: totals.get(id) ?? emptyTotals(),
      };
    });
    const last = rows[rows.length - 1];
    return { rows, next: more && last ? { startedAt: last.startedAt, id: last.id } : null };
  }

  /** Ledger totals per session id (sessions without rows are absent from the map). */
  async totals(ids: readonly string[]): Promise<Map<string, SessionTotals>> {
    const out = new Map<string, SessionTotals>();
    if (ids.length === 0) return out;
    const placeholders = ids.map((_, i) => `$${i + 1}`).join(', ');
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT session_id, CAST(COUNT(*) AS TEXT) AS responses,
              ${sumText('CASE WHEN estimated THEN 1 ELSE 0 END')} AS estimated_responses,
              ${TOTAL_COLUMNS.map((c) => `${sumText(c)} AS ${c}`).join(', ')},
              ${sumText('cost_nanos')} AS cost_nanos
       FROM usage_ledger WHERE session_id IN (${placeholders}) GROUP BY session_id`,
      ids,
    );
    for (const r of rows) {
      const t = emptyTotals();
      t.responses = int(r.responses);
      t.estimated_responses = int(r.estimated_responses);
      for (const c of TOTAL_COLUMNS) t[c] = int(r[c]);
      t.cost_nanos = BigInt(String(r.cost_nanos));
      out.set(String(r.session_id), t);
    }
    return out;
  }
}
