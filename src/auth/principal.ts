/** What a credential may be used for. `admin` implies every other scope. */
export const SCOPES = ['realtime', 'mint', 'usage', 'admin', 'provider_mint'] as const;
export type Scope = (typeof SCOPES)[number];

export type CredentialKind = 'api_key' | 'jwt' | 'ephemeral' | 'admin_token';

/**
 * The session configuration an ephemeral key was minted with. Its fields are applied upstream
 * on connect and may not be changed by the client afterwards. Held in the dialect-neutral
 * canonical form described in auth/locked-session.ts (includes `model`).
 */
export type LockedSessionConfig = Record<string, unknown>;

/** Who is connecting or calling; travels with the session into logs, metering and limits. */
export interface Principal {
  user: string;
  tenant?: string;
  /** Id of the credential (never its secret): an API key id, an ephemeral key id, or a JWT's jti. */
  keyId?: string;
  /** For an ephemeral key minted by an API key: that key's id. */
  parentKeyId?: string;
  scopes: Scope[];
  kind: CredentialKind;
  /** Unix milliseconds after which the credential no longer admits new sessions. */
  expiresAt?: number;
  /** Model an ephemeral key is bound to, if any. */
  model?: string;
  lockedSession?: LockedSessionConfig;
}

/**
 * The API key a principal's spend is billed to (ledger key_id, per-key budgets, spend log): the
 * minting key for an ephemeral key, so a partner app cannot escape its key's budget by minting.
 */
export function billingKeyId(principal: Principal): string | undefined {
  return principal.parentKeyId ?? principal.keyId;
}

export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(scope);
}
