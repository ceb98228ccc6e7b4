/**
 * Per-key budgets through the relay: a key handed to one partner app is cut off at its own
 * limit — on response.create mid-session and at connect — while the same user's other keys go on.
 */
import { parseApiKey } from '../../src/auth/api-keys';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { refusedUpgrade, TestClient } from '../support/ws-client';

jest.setTimeout(30_000);

describe('per-key budgets', () => {
  let r: RelayInstance;
  beforeAll(async () => {
    r = await startRelay();
  });
  afterAll(async () => {
    await r?.close();
  });

  const put = (scope: string, id: string, body: Record<string, unknown>) =>
    r.relay.app.inject({ method: 'PUT', url: `/admin/budgets/${scope}/${id}`, headers: { authorization: `Bearer ${r.adminToken}` }, payload: body });

  it('refuses further responses and new sessions of the key over its limit, not its sibling keys', async () => {
    const partner = await r.createKey('frank', ['realtime'], 'acme');
    const own = await r.createKey('frank', ['realtime'], 'acme');
    const partnerId = parseApiKey(partner)!.id;
    // One nano-dollar: the first response crosses it.
    const res = await put('key', partnerId, { total_usd: '0.000000001' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ object: 'relay.budget', scope: 'key', id: partnerId, limits: { total_usd: '0.000000001', daily_usd: null } });

    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${partner}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    // The response that crossed completes; then the client is told, and the next one is refused.
    await c.waitFor((e) => e.type === 'error' && (e.error as { code?: string }).code === 'budget_exceeded');
    const from = c.events.length;
    c.send({ type: 'response.create', event_id: 'again' });
    const refused = await c.waitFor('error', 5000, from);
    expect(refused.error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded', event_id: 'again' });
    c.ws.close();
    await c.closed;

    const denied = await refusedUpgrade(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${partner}` } });
    expect(denied.status).toBe(402);
    expect(denied.body).toMatchObject({ error: { code: 'insufficient_quota' } });
    expect(JSON.stringify(denied.body)).toMatch(/key/);

    // Same user, same tenant, another key: unaffected.
    const d = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${own}` } });
    await d.waitFor('session.created');
    d.send({ type: 'response.create' });
    await d.waitFor('response.done');
    d.ws.close();
    await d.closed;

    const status = await r.relay.app.inject({ method: 'GET', url: `/admin/budgets/key/${partnerId}`, headers: { authorization: `Bearer ${r.adminToken}` } });
    expect(status.json().spent.total_usd).not.toBe('0.000000000');
    const list = await r.relay.app.inject({ method: 'GET', url: '/admin/budgets', headers: { authorization: `Bearer ${r.adminToken}` } });
    expect(list.json().data.map((b: { scope: string; id: string }) => `${b.scope}:${b.id}`)).toEqual([`key:${partnerId}`]);
  });

  it('counts sessions on ephemeral keys against the API key that minted them', async () => {
    const partner = await r.createKey('hana', ['mint'], 'acme');
    const partnerId = parseApiKey(partner)!.id;
    expect((await put('key', partnerId, { total_usd: '0.000000001' })).statusCode).toBe(200);
    const mint = async (): Promise<string> => {
      const res = await r.request<{ value: string }>('POST', '/v1/realtime/client_secrets', {
        headers: { authorization: `Bearer ${partner}` },
        body: { session: { type: 'realtime', model: 'gpt-realtime' } },
      });
      expect(res.status).toBe(200);
      return res.body.value;
    };
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${await mint()}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    await c.waitFor((e) => e.type === 'error' && (e.error as { code?: string }).code === 'budget_exceeded');
    c.ws.close();
    await c.closed;
    // A freshly minted key does not start over: the spend is the minting key's.
    const denied = await refusedUpgrade(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${await mint()}` } });
    expect(denied.status).toBe(402);
    const byKey = await r.request<{ data: Array<{ key: string | null; responses: number }> }>('GET', '/admin/usage?group_by=key&user=hana', { headers: { authorization: `Bearer ${r.adminToken}` } });
    expect(byKey.body.data).toEqual([expect.objectContaining({ key: partnerId, responses: 1 })]);
  });

  it('refuses an unknown budget scope', async () => {
    const res = await put('team', 'x', { total_usd: '1' });
    expect(res.statusCode).toBe(400);
  });
});
