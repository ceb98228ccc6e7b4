import { randomBytes } from 'node:crypto';
import { freshPostgresUrl } from '../support/databases';
import { startRelayProcess, type RelayProcess } from '../support/relay-process';
import { refusedUpgrade, TestClient } from '../support/ws-client';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Two relay processes sharing one PostgreSQL and one Redis, as behind a load balancer without
 * sticky sessions: limits, budgets and ephemeral keys must hold across them.
 */
describe('two relay instances on one PostgreSQL and one Redis', () => {
  jest.setTimeout(90000);
  let a: RelayProcess;
  let b: RelayProcess;
  let dropDb: () => Promise<void>;
  const admin = 'multi-admin-token-0123456789';

  beforeAll(async () => {
    const pg = await freshPostgresUrl();
    dropDb = pg.drop;
    const env = {
      UPSTREAM_PROVIDER: 'simulator',
      DATABASE_URL: pg.url,
      REDIS_URL,
      RELAY_TOKEN_SECRET: 'multi-instance-shared-secret-0123456789ab',
      RELAY_ADMIN_TOKEN: admin,
      MAX_SESSIONS_PER_USER: '1',
      DRAIN_TIMEOUT_MS: '500',
    };
    // Start one after the other's migrations are done, then also at once: both must come up.
    [a, b] = await Promise.all([startRelayProcess({ ...env, SPOOL_DIR: `/tmp/relay-multi-a-${process.pid}` }), startRelayProcess({ ...env, SPOOL_DIR: `/tmp/relay-multi-b-${process.pid}` })]);
  });

  afterAll(async () => {
    expect(await a?.stop()).toBe(0);
    expect(await b?.stop()).toBe(0);
    await dropDb?.();
  });

  async function createKey(relay: RelayProcess, user: string, scopes: string[], tenant?: string): Promise<string> {
    const res = await fetch(`${relay.baseUrl}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ user, scopes, ...(tenant ? { tenant } : {}) }) });
    expect(res.status).toBe(201);
    return ((await res.json()) as { key: string }).key;
  }

  it('shares API keys, ephemeral keys and the per-user session limit', async () => {
    const user = `u-${randomBytes(4).toString('hex')}`;
    const key = await createKey(a, user, ['realtime', 'mint']);
    // An ephemeral key minted on A opens a session on B.
    const minted = await fetch(`${a.baseUrl}/v1/realtime/client_secrets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Minted on A.' } }),
    });
    const { value: ek } = (await minted.json()) as { value: string };
    const onB = await TestClient.connect(b.wsUrl, { protocols: ['realtime', `openai-insecure-api-key.${ek}`] });
    await onB.waitFor((e) => e.type === 'session.updated' && JSON.stringify(e).includes('Minted on A.'));

    // MAX_SESSIONS_PER_USER=1 holds across instances: A refuses a second session before the upgrade.
    const second = await refusedUpgrade(a.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    expect(second.status).toBe(429);
    expect(second.body).toMatchObject({ error: { code: 'too_many_sessions' } });
    onB.close();
    await onB.closed;
    // Once released on B, A admits the user.
    let admitted: TestClient | null = null;
    for (let i = 0; i < 40 && !admitted; i++) {
      admitted = await TestClient.connect(a.wsUrl, { headers: { authorization: `Bearer ${key}` } }).catch(() => null);
      if (!admitted) await new Promise((r) => setTimeout(r, 50));
    }
    expect(admitted).not.toBeNull();
    admitted!.close();
    await admitted!.closed;

    // A key revoked through A is refused on B at once.
    const id = key.split('_')[1];
    expect((await fetch(`${a.baseUrl}/admin/keys/${id}`, { method: 'DELETE', headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);
    expect((await refusedUpgrade(b.wsUrl, { headers: { authorization: `Bearer ${key}` } })).status).toBe(401);
  });

  it('enforces one tenant budget: spend on A stops a session already open on B, and new connections', async () => {
    const tenant = `t-${randomBytes(4).toString('hex')}`;
    const keyA = await createKey(a, `${tenant}-ann`, ['realtime'], tenant);
    const keyB = await createKey(a, `${tenant}-ben`, ['realtime'], tenant);
    const put = await fetch(`${b.baseUrl}/admin/budgets/tenant/${tenant}`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ total_usd: '0.000001' }) });
    expect(put.status).toBe(200);

    // Ben's session on B opens while the tenant is under budget.
    const onB = await TestClient.connect(b.wsUrl, { headers: { authorization: `Bearer ${keyB}` } });
    await onB.waitFor('session.created');

    // Ann spends on A: her crossing response completes, then she is told.
    const onA = await TestClient.connect(a.wsUrl, { headers: { authorization: `Bearer ${keyA}` } });
    await onA.waitFor('session.created');
    onA.send({ type: 'response.create' });
    await onA.waitFor('response.done');
    expect(await onA.waitFor('error')).toMatchObject({ error: { type: 'insufficient_quota', code: 'budget_exceeded' } });
    onA.close();
    await onA.closed;

    // Ben, mid-session on B, is refused at his next response.create.
    onB.send({ type: 'response.create', event_id: 'evt_ben' });
    expect(await onB.waitFor('error')).toMatchObject({ error: { code: 'budget_exceeded', event_id: 'evt_ben' } });
    onB.close();
    await onB.closed;

    // And neither instance admits a new session for the tenant.
    expect((await refusedUpgrade(b.wsUrl, { headers: { authorization: `Bearer ${keyA}` } })).status).toBe(402);
    expect((await refusedUpgrade(a.wsUrl, { headers: { authorization: `Bearer ${keyB}` } })).status).toBe(402);
    const usage = await fetch(`${b.baseUrl}/admin/usage?tenant=${tenant}`, { headers: { authorization: `Bearer ${admin}` } });
    const body = (await usage.json()) as { data: Array<{ responses: number }> };
    expect(body.data[0].responses).toBe(1);
  });
});
