import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logging';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { refusedUpgrade, TestClient } from '../support/ws-client';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A pino logger writing into memory, at the most verbose level, so every logged URL is seen. */
function captureLogs(): { logger: ReturnType<typeof createLogger>; text: () => string } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { logger: createLogger('trace', stream), text: () => lines.join('') };
}

const pct = (s: string): string => [...s].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');

describe('credentials stay out of logs', () => {
  let relay: RelayInstance;
  afterEach(async () => {
    await relay?.close();
  });

  it('refuses a percent-encoded credential in the query string and logs it redacted after decoding', async () => {
    const logs = captureLogs();
    relay = await startRelay({ AUTH_FAILURE_LIMIT: '0' }, { logger: logs.logger });
    const key = await relay.createKey('alice', ['usage', 'realtime']);
    const secret = key.split('_').slice(2).join('_');
    const jwtBody = `${randomBytes(24).toString('base64url')}.${randomBytes(24).toString('base64url')}`;
    const queries = [
      `a=%72${key.slice(1)}`, // %72 = r
      `a=${pct(key)}`, // every character encoded
      `a=%2572${key.slice(1)}`, // encoded twice
      `a=%65k_${secret}`, // %65 = e: an ephemeral-key shape
      `a=%65yJ${jwtBody}`, // a JWT
      `x=1&%74oken=${secret}`, // an encoded credential name (%74 = t)
    ];
    const answers: unknown[] = [];
    for (const q of queries) {
      const res = await relay.request<{ error?: { code: string } }>('GET', `/v1/usage?${q}`, { headers: { authorization: `Bearer ${key}` } });
      answers.push([q, res.status, res.body.error?.code]);
    }
    // And over a real WebSocket upgrade.
    const ws = await refusedUpgrade(`${relay.wsUrl}?model=gpt-realtime&a=%72${key.slice(1)}`, { headers: { authorization: `Bearer ${key}` } });

    // The logs first: no form of the secret, whichever way it was encoded.
    const out = logs.text();
    expect(out).toContain('/v1/usage?a=[redacted]');
    expect(out).toContain('model=gpt-realtime&a=[redacted]');
    expect(out).not.toContain(secret);
    expect(out).not.toContain(jwtBody);
    // Every one of them was refused.
    expect(answers).toEqual(queries.map((q) => [q, 401, 'credential_in_query']));
    expect(ws.status).toBe(401);
  });
});

describe('failed authentications are throttled per client address', () => {
  let relay: RelayInstance;
  let other: RelayInstance | undefined;
  afterEach(async () => {
    await relay?.close();
    await other?.close();
    other = undefined;
  });

  const adminCall = (r: RelayInstance, token: string, remoteAddress: string) =>
    r.relay.app.inject({ method: 'GET', url: '/admin/usage', headers: { authorization: `Bearer ${token}` }, remoteAddress });

  it('answers 429 with Retry-After and a JSON body after N failures from one address; other addresses and valid keys elsewhere are unaffected', async () => {
    relay = await startRelay({ AUTH_FAILURE_LIMIT: '5', AUTH_FAILURE_WINDOW_MS: '60000' });
    for (let i = 0; i < 5; i++) expect((await adminCall(relay, `wrong-admin-token-${i}-0123456789`, '10.0.0.1')).statusCode).toBe(401);
    const blocked = await adminCall(relay, 'wrong-admin-token-x-0123456789', '10.0.0.1');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(blocked.json()).toEqual({ error: { type: 'rate_limit_error', code: 'too_many_failed_authentications', message: expect.any(String), param: null } });
    // Refused before the credential is looked at: a right guess looks like a wrong one.
    expect((await adminCall(relay, relay.adminToken, '10.0.0.1')).statusCode).toBe(429);
    // Another address, valid or not, is unaffected.
    expect((await adminCall(relay, relay.adminToken, '10.0.0.2')).statusCode).toBe(200);
    expect((await adminCall(relay, 'wrong-admin-token-y-0123456789', '10.0.0.3')).statusCode).toBe(401);

    // Real WebSocket upgrades: five forged keys from 127.0.0.2, then even a valid one is refused
    // there while a valid key from 127.0.0.1 opens its session.
    const key = await relay.createKey('alice', ['realtime']);
    const forged = (i: number): string => `rk_0123456789abcdef_forgedsecretforgedsecretforgedsecre${i}0`;
    for (let i = 0; i < 5; i++) expect((await refusedUpgrade(relay.wsUrl, { headers: { authorization: `Bearer ${forged(i)}` }, localAddress: '127.0.0.2' })).status).toBe(401);
    const refused = await refusedUpgrade(relay.wsUrl, { headers: { authorization: `Bearer ${key}` }, localAddress: '127.0.0.2' });
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ error: { code: 'too_many_failed_authentications' } });
    const c = await TestClient.connect(relay.wsUrl, { headers: { authorization: `Bearer ${key}` }, localAddress: '127.0.0.1' });
    await c.waitFor('session.created');
    c.close();
    await c.closed;
  });

  it('counts failures across instances sharing Redis', async () => {
    const env = { AUTH_FAILURE_LIMIT: '3', REDIS_URL, REDIS_KEY_PREFIX: `test-authfail-${randomBytes(6).toString('hex')}:` };
    relay = await startRelay(env);
    other = await startRelay(env);
    for (let i = 0; i < 3; i++) expect((await adminCall(relay, `wrong-admin-token-${i}-0123456789`, '10.1.0.1')).statusCode).toBe(401);
    expect((await adminCall(other, other.adminToken, '10.1.0.1')).statusCode).toBe(429);
    expect((await adminCall(other, other.adminToken, '10.1.0.2')).statusCode).toBe(200);
  });
});
