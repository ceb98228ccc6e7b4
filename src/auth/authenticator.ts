import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { JWTVerifyGetKey } from 'jose';
import type { RelayConfig } from '../config/config';
import { HttpError } from '../http/errors';
import { migrate, type Migration, type SqlDatabase } from '../storage/database';
import { API_KEY_MIGRATIONS, API_KEY_PREFIX, ApiKeyStore, parseApiKey } from './api-keys';
import { extractCredential, type CredentialSource } from './credentials';
import { EPHEMERAL_KEY_MIGRATIONS, EPHEMERAL_KEY_PREFIX, EphemeralKeys } from './ephemeral-keys';
import { AuthError, unauthorized } from './errors';
import { JWT_SCOPES, JwtVerifier } from './jwt';
import { hasScope, type Principal, type Scope } from './principal';

export { AuthError } from './errors';

/** Every table the auth module needs, in order. `Authenticator.init()` applies them. */
export const AUTH_MIGRATIONS: Migration[] = [...API_KEY_MIGRATIONS, ...EPHEMERAL_KEY_MIGRATIONS];

/** The subset of a pino (or Fastify) logger the authenticator writes to. */
export interface AuthLogger {
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface AuthenticatorOptions {
  config: Pick<RelayConfig, 'auth'>;
  db: SqlDatabase;
  logger?: AuthLogger;
  now?: () => number;
  /** Overrides the JWKS fetched from JWT_JWKS_URL. */
  jwks?: JWTVerifyGetKey;
}

/** Throws 403 `insufficient_scope` unless the principal holds the scope (`admin` holds all). */
export function requireScope(principal: Principal, scope: Scope): void {
  if (!hasScope(principal, scope)) {
    throw new AuthError(403, 'insufficient_scope', `This credential lacks the '${scope}' scope.`);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** The parts of an HTTP request that carry a credential: its headers, and its URL (refused there). */
export interface CredentialCarrier {
  headers: IncomingHttpHeaders;
  url?: string;
  /** The client's address (Fastify's `request.ip`), for the failed-authentication throttle. */
  ip?: string;
}

/** What the authenticator needs of the failed-authentication throttle (src/limits/auth-failures.ts). */
export interface FailedAuthThrottle {
  /** Throws (429) while the address has failed too often. */
  assertAllowed(address: string): Promise<void>;
  recordFailure(address: string): Promise<void>;
}

/**
 * Resolves each WebSocket handshake and HTTP call to a Principal, or refuses it. Order:
 * the admin token, relay API keys (`rk_`), relay ephemeral keys (`ek_`), then app JWTs.
 * Only credential ids are ever logged.
 */
export class Authenticator {
  readonly keyStore: ApiKeyStore;
  readonly ephemeralKeys: EphemeralKeys;
  private readonly jwt: JwtVerifier;
  private readonly adminDigest?: Buffer;
  private readonly db: SqlDatabase;
  private readonly logger?: AuthLogger;

  constructor(opts: AuthenticatorOptions) {
    const auth = opts.config.auth;
    this.db = opts.db;
    this.logger = opts.logger;
    this.keyStore = new ApiKeyStore(opts.db, opts.now);
    this.ephemeralKeys = new EphemeralKeys({ secret: auth.tokenSecret, db: opts.db, maxTtlS: auth.ephemeralMaxTtlS, now: opts.now });
    this.jwt = new JwtVerifier(auth.jwt, { jwks: opts.jwks, now: opts.now });
    this.adminDigest = auth.adminToken ? digest(auth.adminToken) : undefined;
  }

  async init(): Promise<void> {
    await migrate(this.db, AUTH_MIGRATIONS);
  }

  async authenticate(headers: IncomingHttpHeaders, opts: { url?: string } = {}): Promise<Principal> {
    let source: CredentialSource | undefined;
    let kind = 'unknown';
    let keyId: string | undefined;
    try {
      const credential = extractCredential(headers, opts);
      if (!credential) {
        throw unauthorized(
          'missing_credential',
          "No credential: send 'Authorization: Bearer <key>' (or Azure-style 'api-key: <key>') or, from a browser, the WebSocket subprotocol 'openai-insecure-api-key.<key>'.",
        );
      }
      source = credential.source;
      const value = credential.value;
      let principal: Principal;
      if (this.adminDigest && timingSafeEqual(digest(value), this.adminDigest)) {
        kind = 'admin_token';
        principal = { user: 'admin', scopes: ['admin'], kind: 'admin_token' };
      } else if (value.startsWith(API_KEY_PREFIX)) {
        kind = 'api_key';
        keyId = parseApiKey(value)?.id;
        const rec = await this.keyStore.verify(value);
        principal = {
          // A key bound to no user still needs an identity for metering: the key itself.
          user: rec.user ?? `key:${rec.id}`,
          tenant: rec.tenant ?? undefined,
          keyId: rec.id,
          scopes: rec.scopes,
          kind: 'api_key',
          expiresAt: rec.expiresAt ?? undefined,
        };
      } else if (value.startsWith(EPHEMERAL_KEY_PREFIX)) {
        kind = 'ephemeral';
        const c = await this.ephemeralKeys.verify(value);
        keyId = c.id;
        principal = {
          user: c.user,
          tenant: c.tenant,
          keyId: c.id,
          parentKeyId: c.parentKeyId,
          scopes: ['realtime'],
          kind: 'ephemeral',
          expiresAt: c.expiresAt,
          model: c.model,
          lockedSession: { ...c.session, model: c.model },
        };
      } else {
        kind = 'jwt';
        const id = await this.jwt.verify(value);
        keyId = id.jti;
        principal = { user: id.user, tenant: id.tenant, keyId: id.jti, scopes: [...JWT_SCOPES], kind: 'jwt', expiresAt: id.expiresAt };
      }
      this.logger?.debug({ kind, keyId: principal.keyId, user: principal.user, tenant: principal.tenant, source }, 'authenticated');
      return principal;
    } catch (err) {
      if (err instanceof HttpError) {
        this.logger?.info({ kind, keyId, source, code: err.code, status: err.statusCode }, 'authentication refused');
      }
      throw err;
    }
  }

  private throttle?: FailedAuthThrottle;

  /** Throttles failed authentications per client address from now on (set once limits exist). */
  useFailureThrottle(throttle: FailedAuthThrottle): void {
    this.throttle = throttle;
  }

  /**
   * For Fastify hooks and raw `IncomingMessage`s alike: both carry headers and url. With a
   * throttle and a known client address, an address that failed too often is refused (429)
   * before its credential is checked, and each 401 counts against it; 403 (a valid credential
   * lacking a scope) does not.
   */
  async authenticateRequest(req: CredentialCarrier): Promise<Principal> {
    const address = req.ip;
    const throttle = address ? this.throttle : undefined;
    if (throttle && address) await throttle.assertAllowed(address);
    try {
      return await this.authenticate(req.headers, { url: req.url });
    } catch (err) {
      if (throttle && address && err instanceof HttpError && err.statusCode === 401) await throttle.recordFailure(address);
      throw err;
    }
  }
}
