import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { delay, TestClient } from '../support/ws-client';
import { TEST_REDIS_URL, connectRedis } from './redis-support';

interface Refusal {
  status: number;
  headers: IncomingHttpHeaders;
  body: { error?: { code?: string; type?: string; message?: string } };
}

/** Attempts an upgrade; resolves with the open client, or with the HTTP answer that refused it. */
function attempt(url: string, key: string): Promise<TestClient | Refusal> {
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(client));
    ws.once('error', (err) => reject(err));
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Refusal['body'] }));
    });
    const client = new TestClient(ws);
  });
}

async function opened(url: string, key: string): Promise<TestClient> {
  const r = await attempt(url, key);
  if (!(r instanceof TestClient)) throw new Error(`refused: ${r.status} ${JSON.stringify(r.body)}`);
  return r;
}

async function refused(url: string, key: string): Promise<Refusal> {
  const r = await attempt(url, key);
  if (r instanceof TestClient) {
    r.close();
    throw new Error('upgrade was accepted');
  }
  return r;
}

/** Slots are freed when the connection's socket closes, a moment after the client sees the close. */
async function openedSoon(url: string, key: string, ms = 3000): Promise<TestClient> {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await attempt(url, key);
    if (r instanceof TestClient) return r;
    if (Date.now() > deadline) throw new Error(`still refused: ${r.status} ${JSON.stringify(r.body)}`);
    await delay(50);
  }
}

/** Fixed one-minute windows: keep a rate test from straddling a window edge. */
async function clearOfMinuteEdge(nowMs: () => Promise<number>): Promise<void> {
  const into = (await nowMs()) % 60_000;
  if (into > 57_000) await delay(60_000 - into + 50);
}

describe('session limits through the relay', () => {
  const relays: RelayInstance[] = [];
  const clients: TestClient[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const r of relays.splice(0)) await r.close();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  async function relay(env: Record<string, string>): Promise<RelayInstance> {
    const r = await startRelay(env);
    relays.push(r);
    return r;
  }

  it('refuses a session over the per-user limit with 429 JSON before the upgrade, and admits again once one closes', async () => {
    const r = await relay({ MAX_SESSIONS_PER_USER: '1' });
    const key = await r.createKey('lim-user', ['realtime']);
    const first = await opened(r.wsUrl, key);
    clients.push(first);
    await first.waitFor('session.created');

    const no = await refused(r.wsUrl, key);
    expect(no.status).toBe(429);
    expect(no.headers['content-type']).toMatch(/application\/json/);
    expect(no.body.error).toMatchObject({ code: 'too_many_sessions', type: 'rate_limit_error' });
    expect(no.headers['retry-after']).toBeUndefined();
    // Refused before the upgrade: the upstream never saw a second connection.
    expect(r.relay.services.simulator!.stats.connectionsOpened).toBe(1);

    first.close();
    await first.closed;
    const again = await openedSoon(r.wsUrl, key);
    clients.push(again);
    await again.waitFor('session.created');
  });

  it('frees the slot of a connection refused at the upgrade (model not priced)', async () => {
    const r = await relay({ MAX_SESSIONS_PER_USER: '1' });
    const key = await r.createKey('lim-model', ['realtime']);
    const bad = await refused(`${r.wsUrl}?model=acme-voice-1`, key);
    expect([bad.status, bad.body.error?.code]).toEqual([400, 'model_not_priced']);
    const good = await openedSoon(r.wsUrl, key);
    clients.push(good);
    await good.waitFor('session.created');
  });

  it('refuses connections over the per-minute rate with 429 connection_rate_exceeded and a Retry-After', async () => {
    const r = await relay({ CONNECTIONS_PER_MINUTE_PER_USER: '2' });
    const key = await r.createKey('lim-rate', ['realtime']);
    await clearOfMinuteEdge(async () => Date.now());
    for (let i = 0; i < 2; i++) {
      const c = await opened(r.wsUrl, key);
      c.close();
      await c.closed;
    }
    const no = await refused(r.wsUrl, key);
    expect(no.status).toBe(429);
    expect(no.body.error).toMatchObject({ code: 'connection_rate_exceeded', type: 'rate_limit_error' });
    const retry = Number(no.headers['retry-after']);
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
  });

  it('enforces one limit across two relay instances sharing a Redis (and shares the minting rate)', async () => {
    const probe = await connectRedis();
    try {
      await clearOfMinuteEdge(async () => {
        const [s, us] = await probe.time();
        return Number(s) * 1000 + Math.floor(Number(us) / 1000);
      });
    } finally {
      await probe.quit();
    }
    // One database too, so one API key (a fresh id each run, hence fresh Redis keys) works on both.
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-limits-'));
    dirs.push(dir);
    const env = {
      REDIS_URL: TEST_REDIS_URL,
      DATABASE_URL: `sqlite:${path.join(dir, 'shared.db')}`,
      MAX_SESSIONS_PER_USER: '1',
      MINT_RATE_LIMIT_PER_MINUTE: '1',
    };
    const a = await relay(env);
    const b = await relay(env);
    // Users are per run as well: other runs on the same Redis never share a count with this one.
    const key = await a.createKey(`lim-shared-${randomUUID()}`, ['realtime', 'mint']);

    const onA = await opened(a.wsUrl, key);
    clients.push(onA);
    await onA.waitFor('session.created');
    const no = await refused(b.wsUrl, key);
    expect(no.status).toBe(429);
    expect(no.body.error?.code).toBe('too_many_sessions');

    onA.close();
    await onA.closed;
    const onB = await openedSoon(b.wsUrl, key);
    clients.push(onB);
    await onB.waitFor('session.created');

    const mint = (r: RelayInstance): Promise<{ status: number }> =>
      r.request('POST', '/v1/realtime/client_secrets', { headers: { authorization: `Bearer ${key}` }, body: { session: { type: 'realtime', model: 'gpt-realtime' } } });
    expect((await mint(a)).status).toBe(200);
    const second = await mint(b);
    expect(second.status).toBe(429);
  });
});
