/**
 * The spend log through a real relay and its simulator: sessions made by simulated
 * conversations, read back through GET /admin/sessions and /v1/sessions with filters, cursor
 * pages and CSV; usage group_by key/tenant/session; the live view and its close action.
 */
import { parseApiKey } from '../../src/auth/api-keys';
import { formatUsd } from '../../src/metering/money';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { delay, TestClient } from '../support/ws-client';

jest.setTimeout(30_000);

interface SessionRow {
  id: string;
  user: string;
  tenant: string | null;
  key_id: string | null;
  model: string;
  transport: string;
  started_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  close_code: number | null;
  end_reason: string | null;
  responses: number;
  estimated_responses: number;
  output_audio_tokens: number;
  input_text_tokens: number;
  cost_usd: string;
}

interface Page {
  object: string;
  data: SessionRow[];
  next_cursor: string | null;
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await delay(50);
    v = await read();
  }
  return v;
}

/** One conversation: `responses` responses, then a normal close. */
async function converse(r: RelayInstance, key: string, responses: number): Promise<void> {
  const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
  await c.waitFor('session.created');
  for (let i = 0; i < responses; i++) {
    const from = c.events.length;
    c.send({ type: 'response.create' });
    await c.waitFor('response.done', 5000, from);
  }
  c.ws.close(1000);
  await c.closed;
}

describe('spend log routes', () => {
  let r: RelayInstance;
  let admin: Record<string, string>;
  const keys: Record<string, string> = {};
  const keyIds: Record<string, string> = {};

  beforeAll(async () => {
    r = await startRelay();
    admin = { authorization: `Bearer ${r.adminToken}` };
    keys.alice = await r.createKey('alice', ['realtime', 'usage'], 't1');
    keys.alice2 = await r.createKey('alice', ['realtime'], 't1');
    keys.bob = await r.createKey('bob', ['realtime', 'usage'], 't2');
    keys.mintOnly = await r.createKey('carol', ['mint']);
    keys.aliceNoTenant = await r.createKey('alice', ['usage']);
    for (const [k, v] of Object.entries(keys)) keyIds[k] = parseApiKey(v)!.id;
    await converse(r, keys.alice, 2);
    await converse(r, keys.alice2, 1);
    await converse(r, keys.bob, 1);
    // Rows are completed when each session has ended on both legs.
    await until(
      () => r.request<Page>('GET', '/admin/sessions', { headers: admin }),
      (res) => res.body.data?.length === 3 && res.body.data.every((s) => s.ended_at !== null && s.responses > 0),
    );
  });

  afterAll(async () => {
    await r?.close();
  });

  it('has one row per session with who, what, when, how it closed and what it cost from the ledger', async () => {
    const res = await r.request<Page>('GET', '/admin/sessions', { headers: admin });
    expect(res.status).toBe(200);
    expect(res.body.data).toHaveLength(3);
    const [bob, alice2, alice] = res.body.data; // newest first
    expect(alice).toMatchObject({ user: 'alice', tenant: 't1', key_id: keyIds.alice, model: 'gpt-realtime', transport: 'websocket', close_code: 1000, responses: 2, estimated_responses: 0 });
    expect(alice2).toMatchObject({ user: 'alice', key_id: keyIds.alice2, responses: 1 });
    expect(bob).toMatchObject({ user: 'bob', tenant: 't2', key_id: keyIds.bob, responses: 1 });
    expect(alice.duration_ms).toBeGreaterThan(0);
    expect(Date.parse(alice.ended_at!) - Date.parse(alice.started_at)).toBe(alice.duration_ms);
    expect(alice.output_audio_tokens).toBeGreaterThan(0);
    // The session's cost is exactly the sum of its ledger rows.
    const [ledgerTotal] = await r.relay.services.metering.ledger.usage({ user: 'alice' }, null);
    const aliceSessions = res.body.data.filter((s) => s.user === 'alice');
    const summed = aliceSessions.reduce((n, s) => n + BigInt(s.cost_usd.replace('.', '')), 0n);
    expect(summed).toBe(ledgerTotal.cost_nanos);
    expect(alice.cost_usd).not.toBe('0.000000000');
  });

  it('filters by user, tenant, key, model and time', async () => {
    const q = async (query: string): Promise<SessionRow[]> => {
      const res = await r.request<Page>('GET', `/admin/sessions?${query}`, { headers: admin });
      expect(res.status).toBe(200);
      return res.body.data;
    };
    expect((await q('user=alice')).map((s) => s.key_id).sort()).toEqual([keyIds.alice, keyIds.alice2].sort());
    expect((await q('tenant=t2')).map((s) => s.user)).toEqual(['bob']);
    expect((await q(`key_id=${keyIds.alice2}`)).map((s) => s.responses)).toEqual([1]);
    expect(await q('model=gpt-realtime-mini')).toEqual([]);
    expect(await q('from=2999-01-01')).toEqual([]);
    expect(await q('to=2000-01-01')).toHaveLength(0);
    const today = new Date().toISOString().slice(0, 10);
    expect(await q(`from=${today}&to=${today}`)).toHaveLength(3);
    const bad = await r.request<{ error: { code: string } }>('GET', '/admin/sessions?from=2025-02-30', { headers: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_date');
  });

  it('pages with an opaque cursor, newest first, without repeats or gaps', async () => {
    const all = (await r.request<Page>('GET', '/admin/sessions', { headers: admin })).body.data.map((s) => s.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 5; i++) {
      const url: string = `/admin/sessions?limit=1${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await r.request<Page>('GET', url, { headers: admin });
      expect(res.status).toBe(200);
      seen.push(...res.body.data.map((s) => s.id));
      cursor = res.body.next_cursor;
      if (!cursor) break;
    }
    expect(seen).toEqual(all);
    expect(cursor).toBeNull();
    const bad = await r.request<{ error: { code: string; param: string } }>('GET', '/admin/sessions?cursor=not-a-cursor', { headers: admin });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_cursor', param: 'cursor' });
  });

  it('answers CSV with Accept: text/csv, the next cursor in a header', async () => {
    const res = await r.request<string>('GET', '/admin/sessions?limit=2', { headers: { ...admin, accept: 'text/csv' } });
    expect(res.status).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/csv/);
    const lines = res.body.trimEnd().split('\r\n');
    expect(lines[0].split(',').slice(0, 8)).toEqual(['id', 'user', 'tenant', 'key_id', 'provider', 'model', 'transport', 'started_at']);
    expect(lines[0]).toContain('cost_usd');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^rs_[0-9a-f]+,bob,t2,/);
    const next = res.headers['relay-next-cursor'];
    expect(typeof next).toBe('string');
    const rest = await r.request<string>('GET', `/admin/sessions?limit=2&cursor=${String(next)}`, { headers: { ...admin, accept: 'text/csv' } });
    expect(rest.body.trimEnd().split('\r\n')).toHaveLength(2);
    expect(rest.headers['relay-next-cursor']).toBeUndefined();
  });

  it('/v1/sessions shows only the caller’s own sessions, to usage or realtime scope', async () => {
    const own = await r.request<Page>('GET', '/v1/sessions', { headers: { authorization: `Bearer ${keys.alice}` } });
    expect(own.status).toBe(200);
    expect(own.body.data.map((s) => s.user)).toEqual(['alice', 'alice']);
    const realtimeOnly = await r.request<Page>('GET', '/v1/sessions', { headers: { authorization: `Bearer ${keys.alice2}` } });
    expect(realtimeOnly.status).toBe(200);
    expect(realtimeOnly.body.data).toHaveLength(2);
    const bob = await r.request<Page>('GET', '/v1/sessions?user=alice', { headers: { authorization: `Bearer ${keys.bob}` } });
    expect(bob.body.data.map((s) => s.user)).toEqual(['bob']);
    // Same user name, no tenant: none of tenant t1's sessions.
    const tenantless = await r.request<Page>('GET', '/v1/sessions', { headers: { authorization: `Bearer ${keys.aliceNoTenant}` } });
    expect(tenantless.status).toBe(200);
    expect(tenantless.body.data).toEqual([]);
    const noScope = await r.request<{ error: { code: string } }>('GET', '/v1/sessions', { headers: { authorization: `Bearer ${keys.mintOnly}` } });
    expect(noScope.status).toBe(403);
    const anon = await r.request('GET', '/v1/sessions?from=nonsense');
    expect(anon.status).toBe(401);
    const notAdmin = await r.request<{ error: { code: string } }>('GET', '/admin/sessions', { headers: { authorization: `Bearer ${keys.alice}` } });
    expect(notAdmin.status).toBe(403);
  });

  it('groups usage by key, tenant and session', async () => {
    type Report = { group_by: string; data: Array<{ key: string | null; responses: number; cost_usd: string }> };
    const byKey = await r.request<Report>('GET', '/admin/usage?group_by=key', { headers: admin });
    expect(byKey.status).toBe(200);
    expect(Object.fromEntries(byKey.body.data.map((d) => [d.key, d.responses]))).toEqual({ [keyIds.alice]: 2, [keyIds.alice2]: 1, [keyIds.bob]: 1 });
    const byTenant = await r.request<Report>('GET', '/admin/usage?group_by=tenant', { headers: admin });
    expect(Object.fromEntries(byTenant.body.data.map((d) => [d.key, d.responses]))).toEqual({ t1: 3, t2: 1 });
    const bySession = await r.request<Report>('GET', '/admin/usage?group_by=session', { headers: admin });
    const sessions = (await r.request<Page>('GET', '/admin/sessions', { headers: admin })).body.data;
    expect(Object.fromEntries(bySession.body.data.map((d) => [d.key, d.cost_usd]))).toEqual(Object.fromEntries(sessions.map((s) => [s.id, s.cost_usd])));
    const csv = await r.request<string>('GET', '/admin/usage?group_by=tenant', { headers: { ...admin, accept: 'text/csv' } });
    expect(csv.body.split('\r\n')[0].startsWith('tenant,responses')).toBe(true);
    const own = await r.request<Report>('GET', '/v1/usage?group_by=session', { headers: { authorization: `Bearer ${keys.alice}` } });
    expect(own.status).toBe(200);
    expect(own.body.data).toHaveLength(2);
  });

  it('lists a live session with its running cost and closes it on request', async () => {
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${keys.bob}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    type Live = { data: Array<{ id: string; user: string; model: string; transport: string; duration_ms: number; responses: number; cost_usd: string; instance: string }> };
    const live = await until(
      () => r.request<Live>('GET', '/admin/sessions/live', { headers: admin }),
      (res) => res.body.data?.[0]?.responses === 1,
    );
    expect(live.status).toBe(200);
    expect(live.body.data).toHaveLength(1);
    const s = live.body.data[0];
    expect(s).toMatchObject({ user: 'bob', model: 'gpt-realtime', transport: 'websocket', responses: 1 });
    expect(s.cost_usd).not.toBe(formatUsd(0n));
    const closed = await r.request<{ closing: boolean }>('POST', `/admin/sessions/${s.id}/close`, { headers: admin });
    expect(closed.status).toBe(200);
    const { code } = await c.closed;
    expect(code).toBe(1008);
    expect(c.events.some((e) => e.type === 'error' && (e.error as { code?: string }).code === 'session_closed_by_admin')).toBe(true);
    const gone = await until(
      () => r.request<Live>('GET', '/admin/sessions/live', { headers: admin }),
      (res) => res.body.data?.length === 0,
    );
    expect(gone.body.data).toEqual([]);
    const logged = await until(
      () => r.request<Page>('GET', `/admin/sessions?limit=1`, { headers: admin }),
      (res) => res.body.data[0]?.end_reason === 'closed_by_admin',
    );
    expect(logged.body.data[0]).toMatchObject({ id: s.id, close_code: 1008, end_reason: 'closed_by_admin' });
    const missing = await r.request<{ error: { code: string } }>('POST', `/admin/sessions/${s.id}/close`, { headers: admin });
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('session_not_found');
    const notAdmin = await r.request('POST', `/admin/sessions/${s.id}/close`, { headers: { authorization: `Bearer ${keys.bob}` } });
    expect(notAdmin.status).toBe(403);
  });
});
