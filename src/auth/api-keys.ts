import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Migration, SqlDatabase } from '../storage/database';
import { WhereClause } from '../storage/where-clause';
import { unauthorized } from './errors';
import { SCOPES, type Scope } from './principal';

/**
 * Relay API keys: `rk_<keyId>_<secret>`. The id is public (logs, admin API); the secret is 256
 * random bits, so a plain SHA-256 is enough to store it (no password-style stretching needed)
 * and nothing stored lets anyone rebuild the key.
 */
export const API_KEY_PREFIX = 'rk_';
const KEY_ID_BYTES = 8;
const SECRET_BYTES = 32;
const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
export const API_KEY_ID_PATTERN_SOURCE = '^[0-9a-f]{16}$';

export interface ApiKeyRecord {
  id: string;
  user: string | null;
  tenant: string | null;
  scopes: Scope[];
  name: string | null;
  /** Unix milliseconds. */
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export interface CreateApiKeyInput {
  user?: string;
  tenant?: string;
  scopes: Scope[];
  name?: string;
  /** Unix milliseconds. */
  expiresAt?: number;
}

export interface CreatedApiKey {
  record: ApiKeyRecord;
  /** The full key. Returned once, at creation; the store keeps only its hash. */
  key: string;
}

export function parseApiKey(value: string): { id: string; secret: string } | null {
  if (!value.startsWith(API_KEY_PREFIX)) return null;
  const rest = value.slice(API_KEY_PREFIX.length);
  const sep = rest.indexOf('_');
  if (sep < 0) return null;
  const id = rest.slice(0, sep);
  const secret = rest.slice(sep + 1);
  if (!KEY_ID_PATTERN.test(id) || secret.length < 16) return null;
  return { id, secret };
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** Timestamps are ISO-8601 UTC text in both dialects: they sort as text and read the same everywhere. */
export const API_KEY_MIGRATIONS: Migration[] = [
  {
    id: 'auth_001_api_keys',
    sqlite: `CREATE TABLE relay_api_keys (
        id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, user_id TEXT, tenant_id TEXT, scopes TEXT NOT NULL,
        name TEXT, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
      CREATE INDEX relay_api_keys_user ON relay_api_keys (user_id);
      CREATE INDEX relay_api_keys_tenant ON relay_api_keys (tenant_id)`,
    postgres: `CREATE TABLE relay_api_keys (
        id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, user_id TEXT, tenant_id TEXT, scopes TEXT NOT NULL,
        name TEXT, created_at TEXT NOT NULL, expires_at TEXT, revoked_at TEXT);
      CREATE INDEX relay_api_keys_user ON relay_api_keys (user_id);
      CREATE INDEX relay_api_keys_tenant ON relay_api_keys (tenant_id)`,
  },
];

interface Row {
  id: string;
  secret_hash: string;
  user_id: string | null;
  tenant_id: string | null;
  scopes: string;
  name: string | null;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = 'id, secret_hash, user_id, tenant_id, scopes, name, created_at, expires_at, revoked_at';

const iso = (ms: number): string => new Date(ms).toISOString();
const ms = (text: string | null): number | null => (text === null ? null : Date.parse(text));

function toRecord(r: Row): ApiKeyRecord {
  return {
    id: r.id,
    user: r.user_id,
    tenant: r.tenant_id,
    scopes: r.scopes.split(',').filter((s): s is Scope => (SCOPES as readonly string[]).includes(s)),
    name: r.name,
    createdAt: Date.parse(r.created_at),
    expiresAt: ms(r.expires_at),
    revokedAt: ms(r.revoked_at),
  };
}

export interface ApiKeyFilter {
  user?: string;
  tenant?: string;
  limit?: number;
}

/**
 * Keys live only in the database and are read on every authentication, so a revocation on
 * one relay instance is effective on all of them at once: there is deliberately no cache.
 */
export class ApiKeyStore {
  constructor(
    private readonly db: SqlDatabase,
    private readonly now: () => number = Date.now,
  ) {}

  async create(input: CreateApiKeyInput): Promise<CreatedApiKey> {
    const scopes = [...new Set(input.scopes)];
    if (scopes.length === 0 || scopes.some((s) => !(SCOPES as readonly string[]).includes(s))) {
      throw new RangeError(`scopes must be a non-empty subset of ${SCOPES.join(', ')}`);
    }
    const id = randomBytes(KEY_ID_BYTES).toString('hex');
    const secret = randomBytes(SECRET_BYTES).toString('base64url');
    const createdAt = this.now();
    await this.db.run(
      `INSERT INTO relay_api_keys (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)`,
      [
        id,
        hashSecret(secret).toString('hex'),
        input.user ?? null,
        input.tenant ?? null,
        scopes.join(','),
        input.name ?? null,
        iso(createdAt),
        input.expiresAt === undefined ? null : iso(input.expiresAt),
      ],
    );
    const record: ApiKeyRecord = {
      id,
      user: input.user ?? null,
      tenant: input.tenant ?? null,
      scopes,
      name: input.name ?? null,
      createdAt: Date.parse(iso(createdAt)),
      expiresAt: input.expiresAt === undefined ? null : Date.parse(iso(input.expiresAt)),
      revokedAt: null,
    };
    return { record, key: `${API_KEY_PREFIX}${id}_${secret}` };
  }

  async get(id: string): Promise<ApiKeyRecord | null> {
    const row = await this.getRow(id);
    return row ? toRecord(row) : null;
  }

  async list(filter: ApiKeyFilter = {}): Promise<ApiKeyRecord[]> {
    const where = new WhereClause().add('user_id', '=', filter.user).add('tenant_id', '=', filter.tenant);
    const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
    const sql = `SELECT ${COLUMNS} FROM relay_api_keys${where} ORDER BY created_at DESC, id LIMIT ${limit}`;
    return (await this.db.query<Row>(sql, where.params)).map(toRecord);
  }

  /** Idempotent: revoking a revoked key keeps its first revocation time. Null when unknown. */
  async revoke(id: string): Promise<ApiKeyRecord | null> {
    await this.db.run('UPDATE relay_api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [id, iso(this.now())]);
    return this.get(id);
  }

  /**
   * Checks a presented key. The hash comparison is constant-time; expiry and revocation are
   * reported only after the secret matched, so they tell nothing to someone guessing ids.
   */
  async verify(value: string): Promise<ApiKeyRecord> {
    const parsed = parseApiKey(value);
    if (!parsed) throw unauthorized('invalid_api_key', 'Malformed relay API key.');
    const row = await this.getRow(parsed.id);
    const presented = hashSecret(parsed.secret);
    // Compare against a dummy hash when the id is unknown, so both paths cost the same.
    const stored = row ? Buffer.from(row.secret_hash, 'hex') : Buffer.alloc(presented.length);
    const match = stored.length === presented.length && timingSafeEqual(stored, presented);
    if (!row || !match) throw unauthorized('invalid_api_key', 'Incorrect relay API key.');
    const record = toRecord(row);
    if (record.revokedAt !== null) throw unauthorized('credential_revoked', `API key ${record.id} has been revoked.`);
    if (record.expiresAt !== null && record.expiresAt <= this.now()) {
      throw unauthorized('credential_expired', `API key ${record.id} has expired.`);
    }
    return record;
  }

  private async getRow(id: string): Promise<Row | null> {
    if (!KEY_ID_PATTERN.test(id)) return null;
    const rows = await this.db.query<Row>(`SELECT ${COLUMNS} FROM relay_api_keys WHERE id = $1`, [id]);
    return rows[0] ?? null;
  }
}

/** An API key as the admin API and the CLI show it: never the secret or its hash; times in Unix seconds. */
export function apiKeyView(r: ApiKeyRecord): Record<string, unknown> {
  const seconds = (ms: number | null): number | null => (ms === null ? null : Math.floor(ms / 1000));
  return {
    id: r.id,
    object: 'relay.api_key',
    user: r.user,
    tenant: r.tenant,
    scopes: r.scopes,
    name: r.name,
    created_at: seconds(r.createdAt),
    expires_at: seconds(r.expiresAt),
    revoked_at: seconds(r.revokedAt),
  };
}
