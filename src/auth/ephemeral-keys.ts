import { hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { errors, jwtVerify, SignJWT } from 'jose';
import { HttpError } from '../http/errors';
import type { Migration, SqlDatabase } from '../storage/database';
import { unauthorized } from './errors';
import type { LockedSessionConfig } from './principal';

/**
 * Relay ephemeral keys: `ek_<compact JWS>`, HS256 over a key derived from RELAY_TOKEN_SECRET.
 * Self-contained, so any instance holding the secret verifies them without a shared store; the
 * only shared state is the revocation list. The derived key, the `typ` header and the audience
 * all differ from anything else signed with that secret, so neither an app JWT nor another
 * relay token can be replayed as an ek (nor an ek, stripped of its prefix, as an app JWT).
 */
export const EPHEMERAL_KEY_PREFIX = 'ek_';
const TYP = 'relay-ek+jwt';
const AUDIENCE = 'realtime-relay:ephemeral-key';
const ISSUER = 'realtime-relay';
const ID_PREFIX = 'eph_';
export const EPHEMERAL_KEY_ID_PATTERN_SOURCE = '^eph_[0-9a-f]{24}$';
const ID_PATTERN = new RegExp(EPHEMERAL_KEY_ID_PATTERN_SOURCE);
/**
 * Browsers carry the key in the Sec-WebSocket-Protocol header, and Node refuses request
 * headers over 16 KiB in total, so a key must leave room for the rest.
 */
export const MAX_EPHEMERAL_KEY_LENGTH = 8192;

export interface EphemeralKeyClaims {
  id: string;
  user: string;
  tenant?: string;
  model: string;
  session: LockedSessionConfig;
  /** The API key that minted it, if one did: per-key budgets and spend count its sessions. */
  parentKeyId?: string;
  /** Unix milliseconds. */
  issuedAt: number;
  /** Unix milliseconds; after it the key opens no new session (started ones continue). */
  expiresAt: number;
}

export interface MintEphemeralKeyInput {
  user: string;
  tenant?: string;
  model: string;
  session: LockedSessionConfig;
  ttlS: number;
  parentKeyId?: string;
}

export interface MintedEphemeralKey {
  id: string;
  /** The `ek_…` secret. Return it to the caller; never log it. */
  value: string;
  /** Unix seconds, as OpenAI reports `expires_at`. */
  expiresAt: number;
  claims: EphemeralKeyClaims;
}

export const EPHEMERAL_KEY_MIGRATIONS: Migration[] = [
  {
    id: 'auth_002_revoked_ephemeral_keys',
    sqlite: 'CREATE TABLE revoked_ephemeral_keys (id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL)',
    postgres: 'CREATE TABLE revoked_ephemeral_keys (id TEXT PRIMARY KEY, revoked_at TEXT NOT NULL)',
  },
];

export interface EphemeralKeysOptions {
  secret: string;
  db: SqlDatabase;
  /** Upper bound on any key's lifetime; also how long a revocation must be remembered. */
  maxTtlS: number;
  now?: () => number;
}

export class EphemeralKeys {
  private readonly key: Uint8Array;
  private readonly db: SqlDatabase;
  private readonly maxTtlS: number;
  private readonly now: () => number;

  constructor(opts: EphemeralKeysOptions) {
    this.key = new Uint8Array(hkdfSync('sha256', opts.secret, Buffer.alloc(0), 'realtime-relay ephemeral key v1', 32));
    this.db = opts.db;
    this.maxTtlS = opts.maxTtlS;
    this.now = opts.now ?? Date.now;
  }

  static isEphemeralKey(value: string): boolean {
    return value.startsWith(EPHEMERAL_KEY_PREFIX);
  }

  async mint(input: MintEphemeralKeyInput): Promise<MintedEphemeralKey> {
    const ttlS = Math.max(1, Math.min(Math.floor(input.ttlS), this.maxTtlS));
    const id = ID_PREFIX + randomBytes(12).toString('hex');
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + ttlS;
    // Compressed because instructions and tool schemas make the config the bulk of the key.
    const scfg = deflateRawSync(Buffer.from(JSON.stringify(input.session), 'utf8')).toString('base64url');
    const jws = await new SignJWT({ tnt: input.tenant, mdl: input.model, scfg, pkid: input.parentKeyId })
      .setProtectedHeader({ alg: 'HS256', typ: TYP })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(input.user)
      .setJti(id)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .sign(this.key);
    const value = EPHEMERAL_KEY_PREFIX + jws;
    if (value.length > MAX_EPHEMERAL_KEY_LENGTH) {
      throw new HttpError(
        400,
        'session_config_too_large',
        `The session configuration makes the ephemeral key ${value.length} characters long; the limit is ${MAX_EPHEMERAL_KEY_LENGTH}. Shorten instructions or tools.`,
      );
    }
    return {
      id,
      value,
      expiresAt: exp,
      claims: { id, user: input.user, tenant: input.tenant, model: input.model, session: input.session, parentKeyId: input.parentKeyId, issuedAt: iat * 1000, expiresAt: exp * 1000 },
    };
  }

  /** Checks signature, type, audience, expiry and the revocation list. Throws AuthError. */
  async verify(value: string): Promise<EphemeralKeyClaims> {
    if (!value.startsWith(EPHEMERAL_KEY_PREFIX)) throw unauthorized('invalid_token', 'Not a relay ephemeral key.');
    let claims: EphemeralKeyClaims;
    try {
      const { payload } = await jwtVerify(value.slice(EPHEMERAL_KEY_PREFIX.length), this.key, {
        algorithms: ['HS256'],
        typ: TYP,
        issuer: ISSUER,
        audience: AUDIENCE,
        requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        currentDate: new Date(this.now()),
      });
      if (typeof payload.mdl !== 'string' || typeof payload.scfg !== 'string' || typeof payload.jti !== 'string' || typeof payload.sub !== 'string') {
        throw unauthorized('invalid_token', 'Ephemeral key is missing claims.');
      }
      const session: unknown = JSON.parse(inflateRawSync(Buffer.from(payload.scfg, 'base64url')).toString('utf8'));
      claims = {
        id: payload.jti,
        user: payload.sub,
        tenant: typeof payload.tnt === 'string' ? payload.tnt : undefined,
        model: payload.mdl,
        session: typeof session === 'object' && session !== null && !Array.isArray(session) ? (session as LockedSessionConfig) : {},
        parentKeyId: typeof payload.pkid === 'string' ? payload.pkid : undefined,
        issuedAt: (payload.iat ?? 0) * 1000,
        expiresAt: (payload.exp ?? 0) * 1000,
      };
    } catch (err) {
      if (err instanceof HttpError) throw err;
      if (err instanceof errors.JWTExpired) throw unauthorized('credential_expired', 'Ephemeral key has expired; mint a new one.');
      throw unauthorized('invalid_token', 'Ephemeral key is not valid.');
    }
    if (await this.isRevoked(claims.id)) throw unauthorized('credential_revoked', `Ephemeral key ${claims.id} has been revoked.`);
    return claims;
  }

  async isRevoked(id: string): Promise<boolean> {
    const rows = await this.db.query('SELECT id FROM revoked_ephemeral_keys WHERE id = $1', [id]);
    return rows.length > 0;
  }

  /** Idempotent. Ids are not stored at mint time, so any well-formed id is accepted. */
  async revoke(id: string): Promise<{ id: string; revokedAt: number }> {
    if (!ID_PATTERN.test(id)) throw new RangeError(`not an ephemeral key id: ${id}`);
    await this.db.run('INSERT INTO revoked_ephemeral_keys (id, revoked_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [
      id,
      new Date(this.now()).toISOString(),
    ]);
    const rows = await this.db.query<{ revoked_at: string }>('SELECT revoked_at FROM revoked_ephemeral_keys WHERE id = $1', [id]);
    return { id, revokedAt: Date.parse(rows[0].revoked_at) };
  }

  /** Forgets revocations older than the longest key lifetime: those keys have expired anyway. */
  async purgeRevocations(): Promise<number> {
    const cutoff = new Date(this.now() - this.maxTtlS * 1000 - 60_000).toISOString();
    return this.db.run('DELETE FROM revoked_ephemeral_keys WHERE revoked_at < $1', [cutoff]);
  }
}
