/**
 * The tool tables: `tool_approvals` (pending and decided approvals, in the database so that an
 * operator answering on any relay instance reaches the session waiting on another) and
 * `tool_calls` (the audit trail, one row per call the relay handled).
 */
import { randomBytes } from 'node:crypto';
import type { Migration, SqlDatabase } from '../storage/database';
import { WhereClause } from '../storage/where-clause';

export const toolMigrations: readonly Migration[] = [
  {
    id: 'tools_001_create',
    sqlite: `
      CREATE TABLE tool_approvals (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        call_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('function', 'mcp')),
        approver TEXT NOT NULL CHECK (approver IN ('user', 'operator')),
        arguments TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
        reason TEXT,
        decided_by TEXT,
        decided_at INTEGER,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX tool_approvals_status ON tool_approvals (status, user_id);
      CREATE TABLE tool_calls (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL,
        call_id TEXT NOT NULL,
        arguments TEXT,
        arguments_sha256 TEXT NOT NULL,
        outcome TEXT NOT NULL,
        approval_id TEXT,
        approval_decision TEXT,
        approval_by TEXT,
        approval_at INTEGER,
        webhook_status INTEGER,
        latency_ms INTEGER,
        output_bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE INDEX tool_calls_created ON tool_calls (created_at);
      CREATE INDEX tool_calls_user ON tool_calls (user_id, created_at)`,
    postgres: `
      CREATE TABLE tool_approvals (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        call_id TEXT NOT NULL,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('function', 'mcp')),
        approver TEXT NOT NULL CHECK (approver IN ('user', 'operator')),
        arguments TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
        reason TEXT,
        decided_by TEXT,
        decided_at BIGINT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL
      );
      CREATE INDEX tool_approvals_status ON tool_approvals (status, user_id);
      CREATE TABLE tool_calls (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        tenant_id TEXT,
        tool TEXT NOT NULL,
        kind TEXT NOT NULL,
        call_id TEXT NOT NULL,
        arguments TEXT,
        arguments_sha256 TEXT NOT NULL,
        outcome TEXT NOT NULL,
        approval_id TEXT,
        approval_decision TEXT,
        approval_by TEXT,
        approval_at BIGINT,
        webhook_status INTEGER,
        latency_ms BIGINT,
        output_bytes BIGINT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX tool_calls_created ON tool_calls (created_at);
      CREATE INDEX tool_calls_user ON tool_calls (user_id, created_at)`,
  },
];

export type ApprovalStatus = 'pending' | 'approved' | 'rejected' | 'expired';
export type Approver = 'user' | 'operator';

export interface Approval {
  id: string;
  session_id: string;
  user: string;
  tenant: string | null;
  call_id: string;
  tool: string;
  kind: 'function' | 'mcp';
  approver: Approver;
  /** The arguments as the model sent them (JSON text), so whoever decides sees what would run. */
  arguments: string;
  status: ApprovalStatus;
  reason: string | null;
  decided_by: string | null;
  decided_at: number | null;
  created_at: number;
  expires_at: number;
}

export type DecideResult = { ok: true; approval: Approval } | { ok: false; reason: 'not_found' | 'already_decided' | 'expired'; approval?: Approval };

const APPROVAL_COLUMNS =
  'id, session_id, user_id, tenant_id, call_id, tool, kind, approver, arguments, status, reason, decided_by, CAST(decided_at AS TEXT) AS decided_at, CAST(created_at AS TEXT) AS created_at, CAST(expires_at AS TEXT) AS expires_at';

function toApproval(r: Record<string, unknown>): Approval {
  const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  return {
    id: String(r.id),
    session_id: String(r.session_id),
    user: String(r.user_id),
    tenant: r.tenant_id === null || r.tenant_id === undefined ? null : String(r.tenant_id),
    call_id: String(r.call_id),
    tool: String(r.tool),
    kind: r.kind as Approval['kind'],
    approver: r.approver as Approver,
    arguments: String(r.arguments),
    status: r.status as ApprovalStatus,
    reason: r.reason === null || r.reason === undefined ? null : String(r.reason),
    decided_by: r.decided_by === null || r.decided_by === undefined ? null : String(r.decided_by),
    decided_at: n(r.decided_at),
    created_at: Number(r.created_at),
    expires_at: Number(r.expires_at),
  };
}

export interface ApprovalFilter {
  status?: ApprovalStatus;
  user?: string;
  /** Undefined: any tenant; null: only rows without a tenant. */
  tenant?: string | null;
  approver?: Approver;
  limit?: number;
}

export class ApprovalStore {
  constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => number = Date.now,
  ) {}

  async create(a: Omit<Approval, 'id' | 'status' | 'reason' | 'decided_by' | 'decided_at' | 'created_at'>): Promise<Approval> {
    const approval: Approval = { ...a, id: `tap_${randomBytes(12).toString('hex')}`, status: 'pending', reason: null, decided_by: null, decided_at: null, created_at: this.now() };
    await this.db.run(
      `INSERT INTO tool_approvals (id, session_id, user_id, tenant_id, call_id, tool, kind, approver, arguments, status, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11)`,
      [approval.id, a.session_id, a.user, a.tenant, a.call_id, a.tool, a.kind, a.approver, a.arguments, approval.created_at, a.expires_at],
    );
    return approval;
  }

  async get(id: string): Promise<Approval | null> {
    const rows = await this.db.query<Record<string, unknown>>(`SELECT ${APPROVAL_COLUMNS} FROM tool_approvals WHERE id = $1`, [id]);
    return rows[0] ? toApproval(rows[0]) : null;
  }

  async list(f: ApprovalFilter): Promise<Approval[]> {
    const where = new WhereClause().add('status', '=', f.status).add('user_id', '=', f.user).add('approver', '=', f.approver);
    if (f.tenant !== undefined) where.add('tenant_id', '=', f.tenant ?? undefined);
    let sql = `SELECT ${APPROVAL_COLUMNS} FROM tool_approvals${where.toString()}`;
    if (f.tenant === null) sql += where.params.length ? ' AND tenant_id IS NULL' : ' WHERE tenant_id IS NULL';
    // A pending approval past its deadline is already lost to its session: do not offer it.
    if (f.status === 'pending') {
      where.params.push(this.now());
      sql += ` AND expires_at > $${where.params.length}`;
    }
    where.params.push(Math.min(Math.max(f.limit ?? 100, 1), 1000));
    sql += ` ORDER BY created_at, id LIMIT $${where.params.length}`;
    return (await this.db.query<Record<string, unknown>>(sql, where.params)).map(toApproval);
  }

  /**
   * Decides a pending approval, once: a conditional UPDATE, so two deciders (user and operator,
   * or two instances) cannot both win, and a decision after the deadline never lands.
   */
  async decide(id: string, approve: boolean, reason: string | null, decidedBy: string): Promise<DecideResult> {
    const at = this.now();
    const changed = await this.db.run(
      `UPDATE tool_approvals SET status = $2, reason = $3, decided_by = $4, decided_at = $5
       WHERE id = $1 AND status = 'pending' AND expires_at > $5`,
      [id, approve ? 'approved' : 'rejected', reason, decidedBy, at],
    );
    const approval = await this.get(id);
    if (!approval) return { ok: false, reason: 'not_found' };
    if (changed > 0) return { ok: true, approval };
    return { ok: false, reason: approval.status === 'pending' || approval.status === 'expired' ? 'expired' : 'already_decided', approval };
  }

  /** Marks a pending approval expired; false when a decision got there first. */
  async expire(id: string): Promise<boolean> {
    return (await this.db.run(`UPDATE tool_approvals SET status = 'expired', decided_at = $2, decided_by = 'timeout' WHERE id = $1 AND status = 'pending'`, [id, this.now()])) > 0;
  }

  async countPending(): Promise<number> {
    const rows = await this.db.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM tool_approvals WHERE status = 'pending' AND expires_at > $1`, [this.now()]);
    return Number(rows[0]?.n ?? 0);
  }
}

export type ToolCallOutcome = 'completed' | 'webhook_error' | 'invalid_arguments' | 'rejected' | 'expired' | 'approved';

export interface ToolCallRecord {
  session_id: string;
  user: string;
  tenant: string | null;
  tool: string;
  kind: 'function' | 'mcp';
  call_id: string;
  /** The arguments' JSON text; stored in full or only as its SHA-256 (TOOL_AUDIT_ARGUMENTS). */
  arguments: string | null;
  arguments_sha256: string;
  outcome: ToolCallOutcome;
  approval_id: string | null;
  approval_decision: ApprovalStatus | null;
  approval_by: string | null;
  approval_at: number | null;
  webhook_status: number | null;
  latency_ms: number | null;
  output_bytes: number;
}

export interface ToolCallRow extends ToolCallRecord {
  id: string;
  created_at: string;
}

export const TOOL_CALL_FIELDS = [
  'id', 'created_at', 'session_id', 'user', 'tenant', 'tool', 'kind', 'call_id', 'arguments', 'arguments_sha256', 'outcome',
  'approval_id', 'approval_decision', 'approval_by', 'approval_at', 'webhook_status', 'latency_ms', 'output_bytes',
] as const;

export interface ToolCallFilter {
  user?: string;
  tenant?: string;
  tool?: string;
  session_id?: string;
  from?: Date;
  to?: Date;
  limit?: number;
}

export class ToolCallStore {
  constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => number = Date.now,
  ) {}

  async record(r: ToolCallRecord): Promise<void> {
    await this.db.run(
      `INSERT INTO tool_calls (id, session_id, user_id, tenant_id, tool, kind, call_id, arguments, arguments_sha256, outcome,
         approval_id, approval_decision, approval_by, approval_at, webhook_status, latency_ms, output_bytes, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
      [
        `tc_${randomBytes(12).toString('hex')}`, r.session_id, r.user, r.tenant, r.tool, r.kind, r.call_id, r.arguments, r.arguments_sha256, r.outcome,
        r.approval_id, r.approval_decision, r.approval_by, r.approval_at, r.webhook_status, r.latency_ms, r.output_bytes, this.now(),
      ],
    );
  }

  async list(f: ToolCallFilter): Promise<ToolCallRow[]> {
    const where = new WhereClause()
      .add('user_id', '=', f.user)
      .add('tenant_id', '=', f.tenant)
      .add('tool', '=', f.tool)
      .add('session_id', '=', f.session_id)
      .add('created_at', '>=', f.from?.getTime())
      .add('created_at', '<', f.to?.getTime());
    where.params.push(Math.min(Math.max(f.limit ?? 1000, 1), 10000));
    const rows = await this.db.query<Record<string, unknown>>(
      `SELECT id, session_id, user_id, tenant_id, tool, kind, call_id, arguments, arguments_sha256, outcome, approval_id, approval_decision,
         approval_by, CAST(approval_at AS TEXT) AS approval_at, webhook_status, CAST(latency_ms AS TEXT) AS latency_ms,
         CAST(output_bytes AS TEXT) AS output_bytes, CAST(created_at AS TEXT) AS created_at
       FROM tool_calls${where.toString()} ORDER BY created_at, id LIMIT $${where.params.length}`,
      where.params,
    );
    const n = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
    const s = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
    return rows.map((r) => ({
      id: String(r.id),
      created_at: new Date(Number(r.created_at)).toISOString(),
      session_id: String(r.session_id),
      user: String(r.user_id),
      tenant: s(r.tenant_id),
      tool: String(r.tool),
      kind: r.kind as ToolCallRecord['kind'],
      call_id: String(r.call_id),
      arguments: s(r.arguments),
      arguments_sha256: String(r.arguments_sha256),
      outcome: r.outcome as ToolCallOutcome,
      approval_id: s(r.approval_id),
      approval_decision: s(r.approval_decision) as ApprovalStatus | null,
      approval_by: s(r.approval_by),
      approval_at: n(r.approval_at),
      webhook_status: n(r.webhook_status),
      latency_ms: n(r.latency_ms),
      output_bytes: Number(r.output_bytes),
    }));
  }
}
