/**
 * Item 5, "no key in any frame, response or log line": one deliberate pass over every flow
 * with the relay logging at trace level into a capture, and self-tests proving that the
 * suite-wide scanner (test/support/leak-scan.ts, installed for every test file) catches a
 * planted key and fails the test file that leaked it.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { SignJWT } from 'jose';
import WebSocket, { WebSocketServer } from 'ws';
import { createRelay, type Relay } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { createLogger } from '../../src/logging';
import { KNOWN_ADMIN_TOKEN, KNOWN_TOKEN_SECRET, registerSecret, scanPayload, takeFindings, type LeakFinding } from '../support/leak-scan';
import { RELAY_ADMIN_TOKEN, RELAY_TOKEN_SECRET } from '../support/relay-instance';
import { refusedUpgrade, TestClient } from '../support/ws-client';
import { crashWatch, HAMMER_ENV, until } from './helpers';

const JWT_SECRET = 'key-leak-jwt-secret-0123456789abcdefghij';
const ROOT = path.resolve(__dirname, '..', '..');

const summary = (f: LeakFinding[]): string[] => f.map((x) => `${x.kind} in ${x.channel} — ${x.where}: ${x.excerpt}`);

describe('key-leak scanner: self-tests', () => {
  it('scans for the same admin token and token secret that relay-instance configures', () => {
    expect(KNOWN_ADMIN_TOKEN).toBe(RELAY_ADMIN_TOKEN);
    expect(KNOWN_TOKEN_SECRET).toBe(RELAY_TOKEN_SECRET);
  });

  it('classifies what it finds, and tolerates keys only where they belong', () => {
    const rk = 'rk_0123456789abcdef_s3cr3tS3CR3Ts3cr3tS3CR3T';
    const jwtBody = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    scanPayload('ws-frame', 'planted', `{"a":"sk-proj-abcdef123456","b":"${rk}","c":"ek_${jwtBody}","d":"${jwtBody}","e":"${KNOWN_ADMIN_TOKEN}"}`);
    expect(takeFindings().map((f) => f.kind).sort()).toEqual(['ephemeral_key', 'jwt', 'provider_key', 'relay_api_key', 'secret']);
    // A key's own creation answer may carry it; a mint answer may carry ek_ (its JWS is not a JWT).
    scanPayload('http-body', 'POST /admin/keys', `{"id":"0123456789abcdef","key":"${rk}"}`, { rkIds: new Set(['0123456789abcdef']) });
    scanPayload('http-body', 'POST /v1/realtime/client_secrets', `{"value":"ek_${jwtBody}"}`, { ephemeral: true });
    expect(takeFindings()).toEqual([]);
    // …but not another key's secret, and words such as "risk-assessment" are not keys.
    scanPayload('http-body', 'POST /admin/keys', `{"id":"ffffffffffffffff","key":"${rk}","note":"risk-assessment-2025"}`, { rkIds: new Set(['ffffffffffffffff']) });
    expect(takeFindings().map((f) => f.kind)).toEqual(['relay_api_key']);
  });

  it('catches a planted key in a server WebSocket frame, an HTTP answer, its headers and a log line', async () => {
    // A WebSocket server that leaks, as a relay bug would.
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    wss.on('connection', (ws) => ws.send(JSON.stringify({ type: 'error', error: { message: 'upstream said: Bearer sk-planted-0123456789abcdef' } })));
    const client = new TestClient(new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`));
    await client.waitFor('error');
    client.close();
    await client.closed;
    await new Promise<void>((resolve) => wss.close(() => resolve()));

    const http: Server = createServer((_req, res) => {
      res.setHeader('x-debug', KNOWN_TOKEN_SECRET);
      res.end('{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkIn0.cGxhbnRlZA"}');
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', () => resolve()));
    await (await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/`)).text();
    await new Promise<void>((resolve) => http.close(() => resolve()));

    // pino's default destination writes to fd 1 with fs.writeSync: the scanner watches that.
    createLogger('info').info({ note: `planted ${'sk-'}logline-0123456789` }, 'planted log line (expected in the output of this self-test)');

    const found = takeFindings();
    expect(found.map((f) => `${f.channel}:${f.kind}`).sort()).toEqual(['http-body:jwt', 'http-headers:secret', 'log:provider_key', 'ws-frame:provider_key']);
    expect(found.every((f) => f.test.includes('catches a planted key'))).toBe(true);
  });

  it('fails the test file that leaks, naming the test and the channel', () => {
    const dir = mkdtempSync(path.join(ROOT, 'test', 'reliability', '.leak-fixture-'));
    const fixture = path.join(dir, 'planted.leak.ts');
    try {
      writeFileSync(
        fixture,
        [
          "import { WebSocketServer } from 'ws';",
          "import WebSocket from 'ws';",
          "it('sends a provider key to a client', async () => {",
          "  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });",
          "  await new Promise<void>((r) => wss.once('listening', () => r()));",
          "  wss.on('connection', (ws) => ws.send('{\"type\":\"x\",\"key\":\"sk-fixture-0123456789\"}'));",
          "  const c = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);",
          "  await new Promise<void>((r) => c.once('message', () => r()));",
          '  c.close();',
          "  await new Promise<void>((r) => wss.close(() => r()));",
          '});',
        ].join('\n'),
      );
      const run = spawnSync(process.execPath, [require.resolve('jest/bin/jest'), '--ci', '--colors=false', '--testMatch', '**/.leak-fixture-*/planted.leak.ts', '--roots', dir], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 60_000,
      });
      const out = `${run.stdout}\n${run.stderr}`;
      expect(run.status).toBe(1);
      expect(out).toContain('key leak');
      expect(out).toContain('provider_key in ws-frame');
      expect(out).toContain('sends a provider key to a client');
      // The report masks what it found.
      expect(out).not.toContain('sk-fixture-0123456789');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/**
 * A relay like relay-instance's startRelay, but logging at trace level into a capture that the
 * scanner reads line by line, with JWT auth and provider-mode minting switched on.
 */
async function startTracedRelay(): Promise<{ relay: Relay; baseUrl: string; wsUrl: string; lines: string[]; close(): Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-leak-'));
  const lines: string[] = [];
  const capture = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const line = chunk.toString('utf8');
      lines.push(line);
      scanPayload('log', 'relay log at trace', line);
      cb();
    },
  });
  const config = loadConfig({
    NODE_ENV: 'test',
    UPSTREAM_PROVIDER: 'simulator',
    DATABASE_URL: `sqlite:${path.join(dir, 'relay.db')}`,
    SPOOL_DIR: path.join(dir, 'spool'),
    PRICES_FILE: path.join(ROOT, 'config', 'prices.json'),
    RELAY_ADMIN_TOKEN,
    RELAY_TOKEN_SECRET,
    JWT_SECRET,
    PROVIDER_MINT_ENABLED: 'true',
    LOG_LEVEL: 'trace',
    PORT: '0',
    HOST: '127.0.0.1',
    // This suite makes dozens of deliberate failed authentications from one address; the
    // throttle would answer 429 to the later ones (test/integration/auth-edges.test.ts tests it).
    AUTH_FAILURE_LIMIT: '0',
    ...HAMMER_ENV,
  });
  const relay = await createRelay(config, { logger: createLogger('trace', capture) });
  const baseUrl = (await relay.listen()).replace(/\/+$/, '');
  return {
    relay,
    baseUrl,
    wsUrl: `${baseUrl.replace(/^http/, 'ws')}/v1/realtime`,
    lines,
    close: () => relay.shutdown().finally(() => rmSync(dir, { recursive: true, force: true })),
  };
}

describe('key-leak: every flow at LOG_LEVEL=trace', () => {
  const crashes = crashWatch();
  beforeAll(() => {
    registerSecret(JWT_SECRET, 'JWT_SECRET');
    crashes.install();
  });
  afterAll(() => crashes.uninstall());

  it('no key, secret or JWT in any frame, HTTP answer or log line', async () => {
    const t = await startTracedRelay();
    const sim = t.relay.services.simulator;
    if (!sim) throw new Error('no simulator');
    const admin = { authorization: `Bearer ${RELAY_ADMIN_TOKEN}` };
    const http = async (method: string, url: string, headers: Record<string, string> = {}, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
      // Over a real socket: the scanner then sees exactly what a client would.
      const res = await fetch(`${t.baseUrl}${url}`, {
        method,
        headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(text) as Record<string, unknown>;
      } catch {
        /* not JSON */
      }
      return { status: res.status, json };
    };
    const converse = async (c: TestClient): Promise<void> => {
      await c.waitFor('session.created');
      c.send({ type: 'session.update', session: { type: 'realtime', instructions: 'Be brief.' } });
      c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(9600, 3).toString('base64') });
      c.send({ type: 'input_audio_buffer.commit' });
      const from = c.events.length;
      c.send({ type: 'response.create' });
      await c.waitFor('response.done', 8000, from);
      c.close();
      await c.closed;
    };

    try {
      // Admin: create, list, read, revoke.
      const created = await http('POST', '/admin/keys', admin, { user: 'leaky', scopes: ['realtime', 'mint', 'usage', 'provider_mint'], name: 'leak check' });
      expect(created.status).toBe(201);
      const key = String(created.json.key);
      const keyId = String(created.json.id);
      expect((await http('GET', '/admin/keys', admin)).status).toBe(200);
      expect((await http('GET', `/admin/keys/${keyId}`, admin)).status).toBe(200);
      expect((await http('GET', '/admin/principals/leaky', admin)).status).toBe(200);
      const doomed = await http('POST', '/admin/keys', admin, { user: 'doomed', scopes: ['realtime'] });
      expect((await http('DELETE', `/admin/keys/${String(doomed.json.id)}`, admin)).status).toBe(200);
      expect((await http('PUT', '/admin/budgets/user/leaky', admin, { daily_usd: '100' })).status).toBe(200);

      // Minting, GA and beta, relay and provider mode.
      const bearer = { authorization: `Bearer ${key}` };
      const ga = await http('POST', '/v1/realtime/client_secrets', bearer, { session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.' } });
      expect(ga.status).toBe(200);
      const beta = await http('POST', '/v1/realtime/sessions', bearer, { model: 'gpt-realtime', instructions: 'Be brief.' });
      expect(beta.status).toBe(200);
      const provider = await http('POST', '/v1/realtime/client_secrets', bearer, { mode: 'provider', session: { type: 'realtime', model: 'gpt-realtime' } });
      expect(provider.status).toBe(200);
      const ephemeral = String(ga.json.value);
      const revokedEphemeral = String((beta.json.client_secret as { value: string }).value);
      expect((await http('POST', `/admin/ephemeral-keys/${String(beta.json.id)}/revoke`, admin)).status).toBe(200);

      // Full conversations: API key, browser subprotocol, ephemeral (locked) key, JWT.
      const jwt = await new SignJWT({ tenant: 'acme' }).setProtectedHeader({ alg: 'HS256' }).setSubject('jwt-user').setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(JWT_SECRET));
      await converse(await TestClient.connect(`${t.wsUrl}?model=gpt-realtime`, { headers: bearer }));
      const browser = await TestClient.connect(t.wsUrl, { protocols: ['realtime', `openai-insecure-api-key.${key}`] });
      expect(browser.ws.protocol).toBe('realtime');
      await converse(browser);
      await converse(await TestClient.connect(t.wsUrl, { headers: { authorization: `Bearer ${ephemeral}` } }));
      await converse(await TestClient.connect(t.wsUrl, { headers: { authorization: `Bearer ${jwt}` } }));
      expect((await http('GET', '/v1/usage', { authorization: `Bearer ${jwt}` })).status).toBe(200);
      expect((await http('GET', '/v1/usage?group_by=model', bearer)).status).toBe(200);
      expect((await http('GET', '/admin/usage?group_by=user', admin)).status).toBe(200);

      // Upstream handshake failures.
      for (const status of [401, 429, 500]) {
        sim.setFaults({ handshakeStatus: status });
        const c = await TestClient.connect(t.wsUrl, { headers: bearer });
        await c.closed;
        expect(c.types()).toContain('error');
      }
      sim.clearFaults();

      // Bad credentials, over HTTP and at the upgrade.
      const wrongSecret = key.replace(/_[^_]+$/, '_wrongwrongwrongwrongwrongwrong');
      const bad = [wrongSecret, `${ephemeral}x`, revokedEphemeral, `${jwt.slice(0, -4)}AAAA`, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.', `${RELAY_ADMIN_TOKEN}x`, 'sk-not-a-relay-key-0123456789'];
      for (const credential of bad) {
        expect((await http('GET', '/v1/usage', { authorization: `Bearer ${credential}` })).status).toBe(401);
        expect((await http('POST', '/admin/keys', { authorization: `Bearer ${credential}` }, { scopes: ['realtime'] })).status).toBe(401);
        expect((await refusedUpgrade(t.wsUrl, { headers: { authorization: `Bearer ${credential}` } })).status).toBe(401);
      }
      expect((await refusedUpgrade(t.wsUrl, { headers: { authorization: `Bearer ${String(doomed.json.key)}` } })).status).toBe(401);
      // A credential put in the query string is refused, and must not reach the logs either.
      expect((await http('GET', `/v1/usage?api_key=${encodeURIComponent(key)}`)).status).toBe(401);
      expect((await refusedUpgrade(`${t.wsUrl}?model=gpt-realtime&token=${encodeURIComponent(jwt)}`)).status).toBe(401);

      await until(() => t.relay.services.sessions.size, (n) => n === 0, 5000);
    } finally {
      await t.close();
    }

    // The capture really saw the relay at work, request by request.
    const text = t.lines.join('');
    for (const msg of ['incoming request', 'admin action', 'ephemeral key minted', 'provider ephemeral key minted', 'session open', 'session closed', 'authentication refused']) {
      expect(text).toContain(msg);
    }
    expect(summary(takeFindings())).toEqual([]);
    crashes.assertNone();
  });
});
