import { mkdtempSync, rmSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Scope } from '../../src/auth/principal';
import { createRelay, type Relay } from '../../src/app';
import { loadConfig } from '../../src/config/config';

export const RELAY_ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef0123';
export const RELAY_TOKEN_SECRET = 'e2e-relay-token-secret-0123456789abcdef';

export interface RelayResponse<T> {
  status: number;
  headers: OutgoingHttpHeaders;
  body: T;
}

export interface RelayInstance {
  relay: Relay;
  /** http(s)://127.0.0.1:<port> (no trailing slash, no /v1). */
  baseUrl: string;
  /** ws(s)://127.0.0.1:<port>/v1/realtime (append ?model=…). */
  wsUrl: string;
  adminToken: string;
  /** Scratch directory holding the database and spool; removed by close(). */
  dir: string;
  /** A relay API key (`rk_…`) created through POST /admin/keys. */
  createKey(user: string, scopes: Scope[], tenant?: string): Promise<string>;
  /**
   * An HTTP call through Fastify's inject, so it works the same over TLS with a self-signed
   * certificate and needs no client trust setup. JSON in, parsed JSON out (text when not JSON).
   */
  request<T = Record<string, unknown>>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, opts?: { headers?: Record<string, string>; body?: unknown }): Promise<RelayResponse<T>>;
  close(): Promise<void>;
}

/**
 * A complete relay (storage, identity, metering, routes) on an ephemeral port in front of the
 * built-in simulator, with its own SQLite file and spool in a temp dir. `env` overrides any
 * setting (e.g. TLS_CERT_FILE / TLS_KEY_FILE, DEMO_ENABLED).
 */
export async function startRelay(env: Record<string, string> = {}, opts: { logger?: Logger } = {}): Promise<RelayInstance> {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-e2e-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    UPSTREAM_PROVIDER: 'simulator',
    DATABASE_URL: `sqlite:${path.join(dir, 'relay.db')}`,
    SPOOL_DIR: path.join(dir, 'spool'),
    // Absolute, so suites run from any cwd still find the shipped price table.
    PRICES_FILE: path.resolve(__dirname, '..', '..', 'config', 'prices.json'),
    MODEL_LIFECYCLE_FILE: path.resolve(__dirname, '..', '..', 'config', 'model-lifecycle.json'),
    RELAY_ADMIN_TOKEN,
    RELAY_TOKEN_SECRET,
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    ...env,
  });
  let relay: Relay;
  try {
    relay = await createRelay(config, opts.logger ? { logger: opts.logger } : {});
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const baseUrl = (await relay.listen()).replace(/\/+$/, '');
  const wsUrl = `${baseUrl.replace(/^http/, 'ws')}/v1/realtime`;

  const request: RelayInstance['request'] = async <T>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    url: string,
    opts: { headers?: Record<string, string>; body?: unknown } = {},
  ) => {
    const res = await relay.app.inject({
      method,
      url,
      headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : {}),
    });
    let body: unknown = res.body;
    try {
      body = JSON.parse(res.body);
    } catch {
      /* not JSON: hand back the text */
    }
    return { status: res.statusCode, headers: res.headers, body: body as T };
  };

  let closed: Promise<void> | null = null;
  return {
    relay,
    baseUrl,
    wsUrl,
    adminToken: RELAY_ADMIN_TOKEN,
    dir,
    request,
    async createKey(user, scopes, tenant) {
      const res = await request<{ key?: string; error?: { message: string } }>('POST', '/admin/keys', {
        headers: { authorization: `Bearer ${RELAY_ADMIN_TOKEN}` },
        body: { user, scopes, ...(tenant !== undefined ? { tenant } : {}) },
      });
      if (res.status !== 201 || typeof res.body.key !== 'string') {
        throw new Error(`POST /admin/keys answered ${res.status}: ${JSON.stringify(res.body)}`);
      }
      return res.body.key;
    },
    close() {
      closed ??= relay.shutdown().finally(() => rmSync(dir, { recursive: true, force: true }));
      return closed;
    },
  };
}
