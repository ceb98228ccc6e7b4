/**
 * Development only (NODE_ENV=development, the default) and only without RELAY_ADMIN_TOKEN: the
 * first start creates one API key with the `admin` scope so the README's next step works
 * without setting anything. It is an ordinary key (hashed in the database, revocable with
 * `keys revoke`); it is made once, ever, for that database, and its secret is shown only then.
 * Production never gets one: there the operator sets RELAY_ADMIN_TOKEN or uses `keys create`.
 */
import type { RelayConfig } from '../config/config';
import type { ApiKeyRecord, ApiKeyStore } from './api-keys';

/** The user the key acts as; also how a later start finds that the key was already made. */
export const DEV_ADMIN_USER = 'dev-admin';
export const DEV_ADMIN_KEY_NAME = 'development admin key (made at the first start)';

export type DevAdminKey =
  | { state: 'created'; record: ApiKeyRecord; key: string }
  | { state: 'exists'; record: ApiKeyRecord }
  | { state: 'not_applicable' };

export async function ensureDevAdminKey(config: Pick<RelayConfig, 'env' | 'auth'>, keyStore: ApiKeyStore): Promise<DevAdminKey> {
  if (config.env !== 'development' || config.auth.adminToken) return { state: 'not_applicable' };
  // Revoked keys count too: an operator who revoked it does not want a new one appearing.
  const existing = (await keyStore.list({ user: DEV_ADMIN_USER, limit: 1000 })).find((k) => k.name === DEV_ADMIN_KEY_NAME);
  if (existing) return { state: 'exists', record: existing };
  const created = await keyStore.create({ user: DEV_ADMIN_USER, scopes: ['admin'], name: DEV_ADMIN_KEY_NAME });
  return { state: 'created', record: created.record, key: created.key };
}
