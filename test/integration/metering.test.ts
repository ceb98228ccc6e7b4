import { Client } from 'pg';
import { costOf } from '../../src/metering/cost';
import { freshPostgresUrl, TEST_POSTGRES_URL } from '../support/databases';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { refusedUpgrade, TestClient } from '../support/ws-client';
import { until } from '../support/until';

describe('metering through the relay', () => {
  const relays: RelayInstance[] = [];
  const drops: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const r of relays.splice(0)) await r.close();
    for (const d of drops.splice(0)) await d();
  });

  it('bills each response at the exact cost of the usage the upstream reported', async () => {
    const r = await startRelay();
    relays.push(r);
    const key = await r.createKey('dora', ['realtime', 'usage']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(48000, 1).toString('base64') });
    c.send({ type: 'input_audio_buffer.commit' });
    c.send({ type: 'response.create' });
    const done = (await c.waitFor('response.done')) as { response: { id: string; usage: Record<string, unknown> } };
    c.send({ type: 'response.create' });
    await c.waitFor((e) => e.type === 'response.done' && (e.response as { id: string }).id !== done.response.id);
    c.close();
    const ledger = r.relay.services.metering.ledger;
    const row = await until(() => ledger.find('simulator', done.response.id), (x) => x !== null);
    const sim = r.relay.services.simulator!.stats.usageTotals;
    const [totals] = await until(() => ledger.usage({ user: 'dora' }), (rows) => rows[0]?.responses === 2);
    // The ledger holds exactly what the upstream reported, category by category.
    expect(totals).toMatchObject({
      responses: sim.responses,
      estimated_responses: 0,
      input_text_tokens: sim.input_text_tokens,
      input_audio_tokens: sim.input_audio_tokens,
      cached_text_tokens: sim.cached_text_tokens,
      cached_audio_tokens: sim.cached_audio_tokens,
      output_text_tokens: sim.output_text_tokens,
      output_audio_tokens: sim.output_audio_tokens,
    });
    // gpt-realtime: text 4 / cached 0.40 / out 16, audio 32 / cached 0.40 / out 64 USD per 1M,
    // i.e. 4000, 400, 16000, 32000, 400, 64000 nano-dollars per token.
    const u = row!.usage;
    const expected =
      BigInt(u.input_text - u.cached_text) * 4000n + BigInt(u.cached_text) * 400n + BigInt(u.output_text) * 16000n +
      BigInt(u.input_audio - u.cached_audio) * 32000n + BigInt(u.cached_audio) * 400n + BigInt(u.output_audio) * 64000n;
    expect(row!.costNanos).toBe(expected);
    expect(row!.costNanos).toBe(costOf(u, r.relay.services.metering.prices.priceFor('simulator', 'gpt-realtime', new Date())!).nanos);
    expect(row!.estimated).toBe(false);
    // The user sees the same figures through the usage API.
    const api = await r.request<{ data: Array<{ cost_usd: string }> }>('GET', '/v1/usage', { headers: { authorization: `Bearer ${key}` } });
    expect(api.status).toBe(200);
  });

  it('refuses a model with no price at connect under UNPRICED_MODEL_POLICY=refuse', async () => {
    const r = await startRelay();
    relays.push(r);
    const key = await r.createKey('ursula', ['realtime']);
    const refused = await refusedUpgrade(`${r.wsUrl}?model=acme-voice-1`, { headers: { authorization: `Bearer ${key}` } });
    // Refused before the upgrade, with the models this relay does price.
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: { code: 'model_not_priced', param: 'model' } });
    expect(refused.body.models).toEqual(expect.arrayContaining(['gpt-realtime', 'gpt-realtime-mini']));
    expect(r.relay.services.simulator!.stats.connectionsOpened).toBe(0);
  });

  it('writes an estimated row when the upstream drops mid-response', async () => {
    const r = await startRelay();
    relays.push(r);
    const key = await r.createKey('eve', ['realtime']);
    r.relay.services.simulator!.setFaults({ dropMidResponseAfterDeltas: 3 });
    const c = await TestClient.connect(r.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(96000, 1).toString('base64') });
    c.send({ type: 'response.create' });
    const created = (await c.waitFor('response.created')) as { response: { id: string } };
    const closed = await c.closed;
    expect(closed.code).toBe(1011);
    const row = await until(() => r.relay.services.metering.ledger.find('simulator', created.response.id), (x) => x !== null);
    expect(row).toMatchObject({ estimated: true, user: 'eve' });
    // 96000 bytes of pcm16 at 24 kHz = 2 s of user audio at 10 tokens/s; 3 deltas of 100 ms at 20 tokens/s.
    expect(row!.usage.input_audio).toBe(20);
    expect(row!.usage.output_audio).toBe(6);
    expect(row!.costNanos).toBeGreaterThan(0n);
  });

  it('stops a user mid-session on one instance when the spend happened on another (shared PostgreSQL)', async () => {
    const pg = await freshPostgresUrl();
    drops.push(pg.drop);
    const a = await startRelay({ DATABASE_URL: pg.url });
    relays.push(a);
    const b = await startRelay({ DATABASE_URL: pg.url });
    relays.push(b);
    const keyA = await a.createKey('frank', ['realtime']);
    // A limit just above zero: one response crosses it.
    const put = await a.request('PUT' as 'POST', '/admin/budgets/user/frank', { headers: { authorization: `Bearer ${a.adminToken}` }, body: { daily_usd: '0.000001' } });
    expect(put.status).toBe(200);

    // The session on B starts while frank is under budget.
    const onB = await TestClient.connect(b.wsUrl, { headers: { authorization: `Bearer ${keyA}` } });
    await onB.waitFor('session.created');

    // Frank spends on A: the crossing response completes, then A tells him.
    const onA = await TestClient.connect(a.wsUrl, { headers: { authorization: `Bearer ${keyA}` } });
    await onA.waitFor('session.created');
    onA.send({ type: 'response.create' });
    await onA.waitFor('response.done');
    const notice = (await onA.waitFor('error')) as { error: { type: string; code: string } };
    expect(notice.error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded' });

    // B learns from the shared ledger at the next response.create, mid-session.
    onB.send({ type: 'response.create', event_id: 'evt_b' });
    const refused = (await onB.waitFor('error')) as { error: { code: string; event_id: string } };
    expect(refused.error).toMatchObject({ code: 'budget_exceeded', event_id: 'evt_b' });
    expect(b.relay.services.simulator!.stats.responses).toBe(0);
    // And a new connection is refused before the upgrade.
    const fresh = await refusedUpgrade(b.wsUrl, { headers: { authorization: `Bearer ${keyA}` } });
    expect(fresh.status).toBe(402);
    expect(fresh.body).toMatchObject({ error: { code: 'insufficient_quota' } });
    onA.close();
    onB.close();
  });

  it('loses and doubles nothing when PostgreSQL goes away mid-session and returns', async () => {
    const pg = await freshPostgresUrl();
    drops.push(async () => {
      await setConnections(dbName, true);
      await pg.drop();
    });
    const dbName = new URL(pg.url).pathname.slice(1);
    const r = await startRelay({ DATABASE_URL: pg.url });
    relays.push(r);
    const key = await r.createKey('gina', ['realtime']);
    const c = await TestClient.connect(r.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    const ledger = r.relay.services.metering.ledger;
    await until(() => ledger.usage({ user: 'gina' }), (rows) => rows[0]?.responses === 1);

    // The database goes away: new connections refused, open ones cut.
    await setConnections(dbName, false);
    for (let i = 0; i < 3; i++) {
      const before = c.events.length;
      c.send({ type: 'response.create' });
      // The budget check cannot run; the relay keeps the conversation going and spools the usage.
      await c.waitFor('response.done', 8000, before);
    }
    const doneIds = c.events.filter((e) => e.type === 'response.done').map((e) => (e.response as { id: string }).id);
    expect(doneIds).toHaveLength(4);
    await until(async () => ledger.spoolDepth(), (n) => n === 3, 10000);
    expect(ledger.spoolDepth()).toBe(3);

    // It returns: the spool replays, each response exactly once.
    await setConnections(dbName, true);
    c.close();
    await c.closed;
    const rows = await until(() => ledger.usage({ user: 'gina' }).catch(() => []), (x) => x[0]?.responses === doneIds.length, 20000);
    expect(rows[0].responses).toBe(doneIds.length);
    expect(await until(async () => ledger.spoolDepth(), (n) => n === 0)).toBe(0);
    // Replaying again (as after a crash mid-replay) changes nothing.
    await ledger.replay();
    expect((await ledger.usage({ user: 'gina' }))[0].responses).toBe(doneIds.length);
    for (const id of doneIds) expect(await ledger.find('simulator', id)).not.toBeNull();
  });
});

async function setConnections(db: string, allow: boolean): Promise<void> {
  const admin = new Client({ connectionString: TEST_POSTGRES_URL });
  await admin.connect();
  await admin.query(`ALTER DATABASE ${db} WITH ALLOW_CONNECTIONS ${allow}`);
  if (!allow) await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
  await admin.end();
}
