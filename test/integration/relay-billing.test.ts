import { randomBytes } from 'node:crypto';
import type { LedgerEntry } from '../../src/storage/ledger';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { ScriptedUpstream, TEN_MILLICENT_NANOS, TEN_MILLICENT_USAGE } from '../support/scripted-upstream';
import { delay, TestClient } from '../support/ws-client';
import { until } from '../support/until';

async function rowsOf(r: RelayInstance, user: string): Promise<Array<Pick<LedgerEntry, 'responseId' | 'status' | 'estimated' | 'costNanos'> & { inputText: number }>> {
  const rows = await r.relay.services.db.query<Record<string, unknown>>(
    'SELECT response_id, status, estimated, CAST(cost_nanos AS TEXT) AS cost_nanos, input_text_tokens FROM usage_ledger WHERE user_id = $1 ORDER BY created_at, response_id',
    [user],
  );
  return rows.map((x) => ({
    responseId: String(x.response_id),
    status: String(x.status),
    estimated: x.estimated === true || x.estimated === 1,
    costNanos: BigInt(String(x.cost_nanos)),
    inputText: Number(x.input_text_tokens),
  }));
}

const fresh = (p: string): string => `${p}-${randomBytes(3).toString('hex')}`;

describe('the money path of a relay session (issue 11, items 3–6)', () => {
  jest.setTimeout(30_000);
  const relays: RelayInstance[] = [];
  const upstreams: ScriptedUpstream[] = [];
  afterEach(async () => {
    for (const r of relays.splice(0)) await r.close();
    for (const u of upstreams.splice(0)) await u.stop();
  });

  async function scripted(o: ConstructorParameters<typeof ScriptedUpstream>[0], env: Record<string, string> = {}): Promise<{ r: RelayInstance; up: ScriptedUpstream }> {
    const up = new ScriptedUpstream(o);
    await up.start();
    upstreams.push(up);
    const r = await startRelay({ ...up.env(), ...env });
    relays.push(r);
    return { r, up };
  }

  async function connect(r: RelayInstance, user: string): Promise<TestClient> {
    const key = await r.createKey(user, ['realtime']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    return c;
  }

  // ---- item 4 ------------------------------------------------------------------------------

  it('cancels an out-of-band response by its id when the client leaves, and bills its exact usage', async () => {
    const { r, up } = await scripted({ responseMs: 20_000 }, { CANCEL_WAIT_MS: '3000' });
    const user = fresh('leaver');
    const c = await connect(r, user);
    c.send({ type: 'response.create', event_id: 'oob_1', response: { conversation: 'none' } });
    const created = (await c.waitFor('response.created')) as { response: { id: string } };
    c.close();
    const rows = await until(() => rowsOf(r, user), (x) => x.length > 0);
    expect(up.received.filter((e) => e.type === 'response.cancel')).toEqual([expect.objectContaining({ response_id: created.response.id })]);
    expect(rows).toEqual([expect.objectContaining({ status: 'cancelled', estimated: false, costNanos: TEN_MILLICENT_NANOS })]);
  });

  it.each([
    ['MAX_SESSION_MS', { MAX_SESSION_MS: '1000' }, 'session_expired'],
    ['IDLE_TIMEOUT_MS', { IDLE_TIMEOUT_MS: '600', PING_INTERVAL_MS: '0' }, 'idle_timeout'],
  ])('waits for the exact usage of a running response when the relay closes the session (%s)', async (_name, env, code) => {
    // The upstream takes 400 ms to stop a cancelled response; the client's close reply comes sooner.
    const { r } = await scripted({ responseMs: 20_000, cancelDelayMs: 400 }, { CANCEL_WAIT_MS: '3000', ...env });
    const user = fresh('closed');
    const c = await connect(r, user);
    c.send({ type: 'response.create', event_id: 'long_1' });
    await c.waitFor('response.created');
    await c.waitFor((e) => e.type === 'error' && (e.error as { code?: string }).code === code, 5000);
    await c.closed;
    const rows = await until(() => rowsOf(r, user), (x) => x.length > 0);
    expect(rows).toEqual([expect.objectContaining({ status: 'cancelled', estimated: false, costNanos: TEN_MILLICENT_NANOS })]);
  });

  it('waits for the exact usage of a running response on SIGTERM drain', async () => {
    const { r } = await scripted({ responseMs: 20_000, cancelDelayMs: 400 }, { CANCEL_WAIT_MS: '3000', DRAIN_TIMEOUT_MS: '100' });
    const user = fresh('drained');
    const c = await connect(r, user);
    c.send({ type: 'response.create', event_id: 'long_2', response: { conversation: 'none' } });
    await c.waitFor('response.created');
    // Shutdown closes the database: watch the rows as they are recorded instead.
    const spy = jest.spyOn(r.relay.services.metering.ledger, 'record');
    await r.relay.shutdown();
    const seen = spy.mock.calls.map(([e]) => ({ status: e.status, estimated: e.estimated, costNanos: e.costNanos }));
    expect(seen).toEqual([{ status: 'cancelled', estimated: false, costNanos: TEN_MILLICENT_NANOS }]);
    expect((await c.closed).code).toBe(1001);
  });

  // ---- item 5 ------------------------------------------------------------------------------

  it.each<[string, { event_id?: string }, { event_id?: string }]>([
    ['with event_ids', { event_id: 'req_1' }, { event_id: 'bogus_1' }],
    ['without event_ids', {}, {}],
  ])('bills a response.create followed by a bogus event and a quick exit (%s), counting the text sent', async (_name, reqId, bogusId) => {
    const { r, up } = await scripted({ stallResponses: true }, { CANCEL_WAIT_MS: '500' });
    const user = fresh('pending');
    const c = await connect(r, user);
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'x'.repeat(4000) }] } });
    c.send({ type: 'response.create', ...reqId });
    c.send({ type: 'bogus.event', ...bogusId });
    await c.waitFor('error');
    c.close();
    const rows = await until(() => rowsOf(r, user), (x) => x.length > 0);
    expect(rows).toEqual([expect.objectContaining({ status: 'unacknowledged', estimated: true })]);
    // The 4,000 characters of item text are in the estimate (≈ 1,000 tokens, envelope included).
    expect(rows[0]!.inputText).toBeGreaterThanOrEqual(1000);
    expect(rows[0]!.costNanos).toBeGreaterThan(0n);
    // A response.create without an event_id went upstream with the relay's own.
    const forwarded = up.received.find((e) => e.type === 'response.create')!;
    expect(forwarded.event_id).toEqual(reqId.event_id ?? expect.stringMatching(/^relay_/));
  });

  it('writes no row for a response.create the upstream refused by its event_id, and stops waiting for it', async () => {
    const { r } = await scripted({ refuseResponses: true }, { CANCEL_WAIT_MS: '20000' });
    const user = fresh('refused');
    const c = await connect(r, user);
    c.send({ type: 'response.create', event_id: 'req_refused', response: { conversation: 'none' } });
    await c.waitFor('error');
    c.close();
    await c.closed;
    // Nothing is pending, so the session ends without the 20 s cancel wait (the test's own timeout is shorter).
    await until(async () => r.relay.services.sessions.size, (n) => n === 0, 10_000);
    expect(r.relay.services.sessions.size).toBe(0);
    expect(await rowsOf(r, user)).toEqual([]);
  });

  // ---- item 6 ------------------------------------------------------------------------------

  it.each([
    ['no usage', undefined],
    ['usage: null', null],
    ['string counts', { ...TEN_MILLICENT_USAGE, input_tokens: '500', input_token_details: { text_tokens: '500' } }],
    ['fractional counts', { ...TEN_MILLICENT_USAGE, output_token_details: { text_tokens: 0, audio_tokens: 12.5 } }],
    ['negative counts', { ...TEN_MILLICENT_USAGE, output_token_details: { text_tokens: 0, audio_tokens: -125 } }],
    ['absurd counts', { ...TEN_MILLICENT_USAGE, output_token_details: { text_tokens: 0, audio_tokens: 9e15 } }],
  ])('bills a response.done with %s as a flagged estimate, and counts it in /metrics', async (_name, usage) => {
    const { r } = await scripted({ responseMs: 50, usage: () => usage });
    const user = fresh('odd');
    const c = await connect(r, user);
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'y'.repeat(2000) }] } });
    c.send({ type: 'response.create', event_id: 'odd_1' });
    await c.waitFor('response.done');
    const rows = await until(() => rowsOf(r, user), (x) => x.length > 0);
    expect(rows).toEqual([expect.objectContaining({ estimated: true, status: 'completed' })]);
    expect(rows[0]!.costNanos).toBeGreaterThan(0n);
    expect(rows[0]!.costNanos).toBeLessThan(10n ** 12n);
    const metrics = await r.request<string>('GET', '/metrics');
    expect(metrics.body).toMatch(/relay_usage_anomalies_total\{[^}]*problem="(missing|malformed)"[^}]*\} 1/);
    c.close();
  });

  it('keeps both rows when another user’s upstream session reuses a response id', async () => {
    const { r } = await scripted({ responseMs: 50, responseId: () => 'resp_reused' });
    const alice = fresh('alice');
    const bob = fresh('bob');
    for (const user of [alice, bob]) {
      const c = await connect(r, user);
      c.send({ type: 'response.create', event_id: 'same' });
      await c.waitFor('response.done');
      c.close();
      await c.closed;
    }
    const a = await until(() => rowsOf(r, alice), (x) => x.length > 0);
    const b = await until(() => rowsOf(r, bob), (x) => x.length > 0);
    expect(a).toEqual([expect.objectContaining({ estimated: false, costNanos: TEN_MILLICENT_NANOS })]);
    expect(b).toEqual([expect.objectContaining({ estimated: false, costNanos: TEN_MILLICENT_NANOS })]);
    expect(await r.relay.services.metering.ledger.find('compatible', 'resp_reused')).not.toBeNull();
  });
});

// ---- item 3, against the simulator ----------------------------------------------------------

describe('after budget_exceeded nothing more is spent (server VAD and transcription)', () => {
  jest.setTimeout(30_000);
  let r: RelayInstance | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it.each(['ga', 'beta'] as const)('turns off automatic responses and transcription upstream (%s)', async (dialect) => {
    r = await startRelay({ REALTIME_API_VERSION: dialect });
    const user = fresh('vad');
    const key = await r.createKey(user, ['realtime']);
    const put = await r.request('PUT' as 'POST', `/admin/budgets/user/${user}`, { headers: { authorization: `Bearer ${r.adminToken}` }, body: { daily_usd: '0.000001' } });
    expect(put.status).toBe(200);
    const model = dialect === 'ga' ? 'gpt-realtime' : 'gpt-4o-realtime-preview-2025-06-03';
    const c = await TestClient.connect(`${r.wsUrl}?model=${model}`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    const vad = { type: 'server_vad', create_response: true };
    const transcription = { model: 'whisper-1' };
    c.send({
      type: 'session.update',
      session: dialect === 'ga' ? { type: 'realtime', audio: { input: { turn_detection: vad, transcription } } } : { turn_detection: vad, input_audio_transcription: transcription },
    });
    await c.waitFor('session.updated');
    const turn = (): void => {
      c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(24_000, 1).toString('base64') });
      c.send({ type: 'input_audio_buffer.commit' });
    };
    turn();
    await c.waitFor((e) => e.type === 'error' && (e.error as { code?: string }).code === 'budget_exceeded', 8000);
    const ledger = r.relay.services.metering.ledger;
    const sim = r.relay.services.simulator!;
    // The turn that crossed the limit is billed (response and transcription), then nothing.
    const settle = async (): Promise<number> => {
      let last = -1;
      for (let i = 0; i < 40; i++) {
        const n = (await ledger.usage({ user }))[0]?.responses ?? 0;
        if (n === last) return n;
        last = n;
        await delay(100);
      }
      return last;
    };
    const billedBefore = await settle();
    const responsesBefore = sim.stats.responses;
    for (let i = 0; i < 4; i++) {
      const from = c.events.length;
      turn();
      await c.waitFor('input_audio_buffer.committed', 5000, from);
    }
    await delay(500);
    expect(await settle()).toBe(billedBefore);
    expect(sim.stats.responses).toBe(responsesBefore);
    // The client cannot turn them back on.
    const from = c.events.length;
    c.send({ type: 'session.update', event_id: 'back_on', session: dialect === 'ga' ? { type: 'realtime', audio: { input: { turn_detection: vad } } } : { turn_detection: vad } });
    const refused = (await c.waitFor('error', 5000, from)) as { error: { code: string; event_id: string } };
    expect(refused.error).toMatchObject({ code: 'budget_exceeded', event_id: 'back_on' });
    c.close();
  });
});
