import { startRelay, type RelayInstance } from '../support/relay-instance';
import { refusedUpgrade, TestClient } from '../support/ws-client';

/**
 * A user is named within its tenant: alice of tenant A, alice of tenant B and the alice of no
 * tenant are three users, for budgets, usage reports and limits alike.
 */
describe('tenants are separate', () => {
  let relay: RelayInstance;
  afterEach(async () => {
    await relay?.close();
  });

  const admin = (): Record<string, string> => ({ authorization: `Bearer ${relay.adminToken}` });

  /** One response through the relay, and its row in the ledger. */
  async function spend(key: string, user: string, tenant: string): Promise<void> {
    const c = await TestClient.connect(relay.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    c.close();
    await c.closed;
    const ledger = relay.relay.services.metering.ledger;
    for (let i = 0; i < 100; i++) {
      if ((await ledger.usage({ user, tenant }))[0]?.responses === 1) return;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('no ledger row');
  }

  it("keeps budgets, the usage API and its CSV apart for same-named users of different tenants", async () => {
    relay = await startRelay();
    const aliceA = await relay.createKey('alice', ['realtime', 'usage'], 'tenant-a');
    const aliceB = await relay.createKey('alice', ['realtime', 'usage'], 'tenant-b');
    const aliceNone = await relay.createKey('alice', ['realtime', 'usage']);

    // A budget for tenant A's alice only.
    const put = await relay.request<{ tenant: string | null }>('PUT', '/admin/budgets/user/alice?tenant=tenant-a', { headers: admin(), body: { total_usd: '0.000001' } });
    expect(put.status).toBe(200);
    await spend(aliceA, 'alice', 'tenant-a');

    // Tenant A's alice is over her budget; the other two alices are not.
    const refused = await refusedUpgrade(relay.wsUrl, { headers: { authorization: `Bearer ${aliceA}` } });
    expect(refused.status).toBe(402);
    for (const key of [aliceB, aliceNone]) {
      const c = await TestClient.connect(relay.wsUrl, { headers: { authorization: `Bearer ${key}` } });
      await c.waitFor('session.created');
      c.close();
      await c.closed;
    }
    const statusB = await relay.request<{ spent: { total_usd: string }; limits: { total_usd: string | null } }>('GET', '/admin/budgets/user/alice?tenant=tenant-b', { headers: admin() });
    expect(statusB.body).toMatchObject({ spent: { total_usd: '0.000000000' }, limits: { total_usd: null } });
    const statusA = await relay.request<{ spent: { total_usd: string } }>('GET', '/admin/budgets/user/alice?tenant=tenant-a', { headers: admin() });
    expect(statusA.body.spent.total_usd).not.toBe('0.000000000');
    expect(put.body.tenant).toBe('tenant-a');

    // The usage API: each alice sees her own rows only; the alice of no tenant has none.
    const own = async (key: string): Promise<number> => (await relay.request<{ total: { responses: number } }>('GET', '/v1/usage', { headers: { authorization: `Bearer ${key}` } })).body.total.responses;
    expect(await own(aliceA)).toBe(1);
    expect(await own(aliceB)).toBe(0);
    expect(await own(aliceNone)).toBe(0);
    const csv = await relay.request<string>('GET', '/v1/usage', { headers: { authorization: `Bearer ${aliceNone}`, accept: 'text/csv' } });
    expect(csv.status).toBe(200);
    const [header, row] = String(csv.body).trim().split('\r\n');
    expect(row.split(',')[header.split(',').indexOf('responses')]).toBe('0');

    // The admin report grouped by user names each (tenant, user) on its own row.
    await spend(aliceB, 'alice', 'tenant-b');
    const byUser = await relay.request<{ data: Array<{ key: string; tenant: string | null; responses: number }> }>('GET', '/admin/usage?group_by=user', { headers: admin() });
    expect(byUser.body.data.map((r) => [r.key, r.tenant, r.responses])).toEqual([
      ['alice', 'tenant-a', 1],
      ['alice', 'tenant-b', 1],
    ]);
    const adminCsv = await relay.request<string>('GET', '/admin/usage?group_by=user', { headers: { ...admin(), accept: 'text/csv' } });
    const lines = String(adminCsv.body).trim().split('\r\n');
    expect(lines[0].startsWith('user,tenant,responses,')).toBe(true);
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 3))).toEqual([
      ['alice', 'tenant-a', '1'],
      ['alice', 'tenant-b', '1'],
    ]);
  });

  it('counts concurrent sessions per (tenant, user)', async () => {
    relay = await startRelay({ MAX_SESSIONS_PER_USER: '1' });
    const aliceA = await relay.createKey('alice', ['realtime'], 'tenant-a');
    const aliceA2 = await relay.createKey('alice', ['realtime'], 'tenant-a');
    const aliceB = await relay.createKey('alice', ['realtime'], 'tenant-b');
    const aliceNone = await relay.createKey('alice', ['realtime']);
    const held = await TestClient.connect(relay.wsUrl, { headers: { authorization: `Bearer ${aliceA}` } });
    await held.waitFor('session.created');
    // The same user of the same tenant, through another key: over the limit.
    expect((await refusedUpgrade(relay.wsUrl, { headers: { authorization: `Bearer ${aliceA2}` } })).status).toBe(429);
    const others = [];
    for (const key of [aliceB, aliceNone]) {
      const c = await TestClient.connect(relay.wsUrl, { headers: { authorization: `Bearer ${key}` } });
      await c.waitFor('session.created');
      others.push(c);
    }
    for (const c of [held, ...others]) c.close();
    await Promise.all([held, ...others].map((c) => c.closed));
  });
});
