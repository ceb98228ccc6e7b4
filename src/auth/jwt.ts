import { createRemoteJWKSet, decodeProtectedHeader, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { JwtConfig } from '../config/config';
import { HttpError } from '../http/errors';
import { unauthorized } from './errors';
import type { Scope } from './principal';

/** What an app JWT may do: connect, mint ephemeral keys for its own user, read its usage. */
export const JWT_SCOPES: readonly Scope[] = ['realtime', 'mint', 'usage'];

/** Asymmetric algorithms accepted from a JWKS. HS256 is only ever checked against JWT_SECRET. */
const JWKS_ALGORITHMS = ['RS256', 'ES256'];
const CLOCK_TOLERANCE_S = 30;

export interface JwtIdentity {
  user: string;
  tenant?: string;
  /** The token's jti, when it has one; used as the principal's key id in logs. */
  jti?: string;
  /** Unix milliseconds. */
  expiresAt: number;
}

export interface JwtVerifierOptions {
  /** Replaces the remote JWKS (tests, or a JWKS the lead already holds). */
  jwks?: JWTVerifyGetKey;
  now?: () => number;
}

/** jose codes meaning "this token is bad" rather than "we could not check it". */
const TOKEN_FAULTS = new Set([
  'ERR_JWT_CLAIM_VALIDATION_FAILED',
  'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
  'ERR_JWS_INVALID',
  'ERR_JWT_INVALID',
  'ERR_JOSE_ALG_NOT_ALLOWED',
  'ERR_JOSE_NOT_SUPPORTED',
  'ERR_JWKS_NO_MATCHING_KEY',
  'ERR_JWKS_MULTIPLE_MATCHING_KEYS',
]);

/**
 * Verifies app JWTs: HS256 with JWT_SECRET, or RS256/ES256 with keys from JWT_JWKS_URL. The
 * algorithm list is pinned per key source, so `alg: none` and HS256-signed-with-a-public-key
 * confusion are refused by jose before any signature check.
 */
export class JwtVerifier {
  private readonly secret?: Uint8Array;
  private readonly jwks?: JWTVerifyGetKey;
  private readonly now: () => number;

  constructor(
    private readonly cfg: JwtConfig,
    opts: JwtVerifierOptions = {},
  ) {
    this.secret = cfg.secret ? new TextEncoder().encode(cfg.secret) : undefined;
    this.jwks = opts.jwks ?? (cfg.jwksUrl ? createRemoteJWKSet(new URL(cfg.jwksUrl), { timeoutDuration: 5000 }) : undefined);
    this.now = opts.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.secret !== undefined || this.jwks !== undefined;
  }

  async verify(token: string): Promise<JwtIdentity> {
    if (!this.enabled) throw unauthorized('invalid_api_key', 'Unrecognised credential.');
    let alg: string | undefined;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      throw unauthorized('invalid_api_key', 'Unrecognised credential.');
    }
    let payload: JWTPayload;
    try {
      const common = {
        issuer: this.cfg.issuer,
        audience: this.cfg.audience,
        requiredClaims: ['exp'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(this.now()),
      };
      if (alg === 'HS256' && this.secret) {
        ({ payload } = await jwtVerify(token, this.secret, { ...common, algorithms: ['HS256'] }));
      } else if (alg !== undefined && JWKS_ALGORITHMS.includes(alg) && this.jwks) {
        ({ payload } = await jwtVerify(token, this.jwks, { ...common, algorithms: JWKS_ALGORITHMS }));
      } else {
        throw unauthorized('invalid_token', `JWT algorithm ${JSON.stringify(alg ?? null)} is not accepted.`);
      }
    } catch (err) {
      throw mapJoseError(err);
    }
    const user = payload[this.cfg.userClaim];
    if (typeof user !== 'string' || user === '') {
      throw unauthorized('invalid_token', `JWT has no '${this.cfg.userClaim}' claim naming the user.`);
    }
    const tenant = payload[this.cfg.tenantClaim];
    return {
      user,
      tenant: typeof tenant === 'string' && tenant !== '' ? tenant : undefined,
      jti: typeof payload.jti === 'string' ? payload.jti : undefined,
      expiresAt: (payload.exp ?? 0) * 1000,
    };
  }
}

function mapJoseError(err: unknown): Error {
  if (err instanceof HttpError) return err;
  if (err instanceof errors.JWTExpired) return unauthorized('credential_expired', 'JWT has expired.');
  if (err instanceof errors.JWTClaimValidationFailed) {
    return unauthorized('invalid_token', `JWT claim '${err.claim}' is not accepted (${err.reason}).`);
  }
  if (err instanceof errors.JOSEError && TOKEN_FAULTS.has(err.code)) {
    return unauthorized('invalid_token', 'JWT signature or format is not valid.');
  }
  // JWKS unreachable, timing out or malformed: our fault, not the caller's, and worth a retry.
  return new HttpError(503, 'auth_unavailable', 'Could not verify the token right now (key set unavailable); retry later.');
}
