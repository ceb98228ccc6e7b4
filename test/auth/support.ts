import { Writable } from 'node:stream';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { AuthError } from '../../src/auth/errors';
import { loadConfig, type RelayConfig } from '../../src/config/config';

export const TOKEN_SECRET = 'test-relay-token-secret-0123456789abcdef';
export const ADMIN_TOKEN = 'test-admin-token-0123456789abcdef';
export const JWT_SECRET = 'test-jwt-secret-0123456789abcdef-0123456789';

/** A config as loadConfig builds it, with the auth settings tests need. */
export function testConfig(env: Record<string, string> = {}): RelayConfig {
  return loadConfig({
    NODE_ENV: 'test',
    RELAY_TOKEN_SECRET: TOKEN_SECRET,
    RELAY_ADMIN_TOKEN: ADMIN_TOKEN,
    JWT_SECRET,
    ...env,
  });
}

/** A pino logger whose lines are kept, to assert that no secret is ever logged. */
export function captureLogs(): { logger: FastifyBaseLogger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

export function bearer(value: string): { authorization: string } {
  return { authorization: `Bearer ${value}` };
}

/**
 * The union of fields the mint and admin routes answer with, so tests can read them without
 * casts; which ones are present depends on the route, and assertions check that.
 */
export interface ApiBody {
  id: string;
  object: string;
  model: string;
  value: string;
  key: string;
  expires_at: number;
  revoked_at: number | null;
  client_secret: { value: string; expires_at: number };
  session: Record<string, unknown>;
  data: { id: string }[];
  keys: unknown[];
  tenant: string | null;
  tenants: string[];
  error: { code: string; type: string; message: string; param: string | null };
}

export interface HttpResult {
  status: number;
  body: ApiBody;
  headers: Headers;
  text: string;
}

/**
 * Real HTTP against a listening app. `app.inject` is not usable under Jest on Node 20:
 * light-my-request requires the ESM-only `cookie@2`, which Jest's CommonJS runtime cannot load.
 */
export async function listen(app: import('fastify').FastifyInstance): Promise<(method: string, path: string, headers?: Record<string, string>, payload?: object) => Promise<HttpResult>> {
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  return async (method, path, headers = {}, payload) => {
    const res = await fetch(base + path, {
      method,
      headers: payload === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: payload === undefined ? undefined : JSON.stringify(payload),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as ApiBody, headers: res.headers, text };
  };
}

/** The status and code an authentication step refused with; fails if it did not refuse. */
export async function refusal(p: Promise<unknown>): Promise<{ status: number; code: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthError) return { status: err.statusCode, code: err.code };
    throw err;
  }
  throw new Error('expected a refusal');
}
