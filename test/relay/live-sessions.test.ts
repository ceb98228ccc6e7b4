/**
 * The live-session directory across instances: two relays on one PostgreSQL and one Redis list
 * each other's sessions and close them; a crashed instance's entries expire with their lease.
 */
import Redis from 'ioredis';
import { RedisLiveSessions } from '../../src/relay/live-sessions';
import { freshPostgresUrl } from '../support/databases';
import { connectRedis, deleteKeys, TEST_REDIS_URL, uniquePrefix } from '../limits/redis-support';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { delay, TestClient } from '../support/ws-client';

jest.setTimeout(30_000);

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await delay(50);
    v = await read();
  }
  return v;
}

interface Live {
  data: Array<{ id: string; user: string; instance: string; responses: number; cost_usd: string }>;
}

describe('live sessions across two relays sharing Redis', () => {
  let a: RelayInstance;
  let b: RelayInstance;
  let drop: () => Promise<void>;
  let redis: Redis;
  const prefix = uniquePrefix();

  beforeAll(async () => {
    redis = await connectRedis();
    const pg = await freshPostgresUrl();
    drop = pg.drop;
    const env = { DATABASE_URL: pg.url, REDIS_URL: TEST_REDIS_URL, REDIS_KEY_PREFIX: prefix };
    a = await startRelay(env);
    b = await startRelay(env);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await drop?.();
    await deleteKeys(redis, prefix);
    redis.disconnect();
  });

  it('lists a session held by the other instance with its running cost, and closes it there', async () => {
    const key = await a.createKey('gina', ['realtime']);
    const c = await TestClient.connect(`${b.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    const admin = { authorization: `Bearer ${a.adminToken}` };
    const live = await until(
      () => a.request<Live>('GET', '/admin/sessions/live', { headers: admin }),
      (res) => res.body.data?.[0]?.responses === 1,
    );
    expect(live.body.data).toHaveLength(1);
    const s = live.body.data[0];
    expect(s.user).toBe('gina');
    expect(s.instance).toBe(b.relay.services.admin.live.instanceId);
    expect(s.instance).not.toBe(a.relay.services.admin.live.instanceId);
    expect(s.cost_usd).not.toBe('0.000000000');
    const closed = await a.request('POST', `/admin/sessions/${s.id}/close`, { headers: admin });
    expect(closed.status).toBe(200);
    expect((await c.closed).code).toBe(1008);
    const gone = await until(
      () => a.request<Live>('GET', '/admin/sessions/live', { headers: admin }),
      (res) => res.body.data?.length === 0,
    );
    expect(gone.body.data).toEqual([]);
    // The spend log (shared database) records who closed it.
    const log = await until(
      () => a.request<{ data: Array<{ id: string; end_reason: string | null }> }>('GET', '/admin/sessions', { headers: admin }),
      (res) => res.body.data?.[0]?.end_reason === 'closed_by_admin',
    );
    expect(log.body.data[0]).toMatchObject({ id: s.id, end_reason: 'closed_by_admin' });
  });
});

describe('RedisLiveSessions leases', () => {
  it('forgets the sessions of an instance that stopped refreshing (crashed) once the lease ends', async () => {
    const prefix = uniquePrefix();
    const conns = await Promise.all([connectRedis(), connectRedis(), connectRedis(), connectRedis()]);
    const crashed = new RedisLiveSessions({ redis: conns[0], subscriber: conns[1], keyPrefix: prefix, ttlMs: 1000 });
    const survivor = new RedisLiveSessions({ redis: conns[2], subscriber: conns[3], keyPrefix: prefix, ttlMs: 1000 });
    try {
      await Promise.all([crashed.whenReady(), survivor.whenReady()]);
      crashed.add({ id: 'rs_1', user: 'u', tenant: null, keyId: null, model: 'm', transport: 'websocket', startedAt: Date.now() }, { close: () => undefined });
      expect((await until(() => survivor.list(), (l) => l.length === 1)).map((s) => s.id)).toEqual(['rs_1']);
      // The crash: the instance's connections die without unpublishing; its refreshes fail.
      conns[0].disconnect();
      conns[1].disconnect();
      await delay(1200);
      expect(await survivor.list()).toEqual([]);
      expect(await survivor.close('rs_1', 'x')).toBe(false);
    } finally {
      await crashed.shutdown();
      await survivor.shutdown();
      await deleteKeys(conns[2], prefix);
      for (const c of conns) c.disconnect();
    }
  });
});
