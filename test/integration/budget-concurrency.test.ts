import { randomBytes } from 'node:crypto';
import { freshPostgresUrl } from '../support/databases';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { ScriptedUpstream, TEN_MILLICENT_USAGE } from '../support/scripted-upstream';
import { delay, TestClient } from '../support/ws-client';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const BUDGET_USD = '0.05';
const BUDGET_NANOS = 50_000_000n;

/**
 * Issue 11, item 2: a $0.05 budget pushed by concurrent out-of-band responses. Every response
 * costs $0.012 at the scripted upstream (so the fifth crosses the limit), which runs any number
 * at once. The bound asserted: total spend ≤ budget + one response's cost.
 */
// 600 text tokens in × 4000 + 150 audio tokens out × 64000 nano-dollars = $0.012.
const RESPONSE_USAGE = { ...TEN_MILLICENT_USAGE, total_tokens: 750, input_tokens: 600, output_tokens: 150, input_token_details: { text_tokens: 600, audio_tokens: 0, image_tokens: 0, cached_tokens: 0 }, output_token_details: { text_tokens: 0, audio_tokens: 150 } };
const RESPONSE_NANOS = 12_000_000n;
describe('budget reservations under concurrency', () => {
  jest.setTimeout(60_000);
  const relays: RelayInstance[] = [];
  const cleanups: Array<() => Promise<void>> = [];
  let upstream: ScriptedUpstream;

  beforeEach(async () => {
    upstream = new ScriptedUpstream({ responseMs: 300, usage: () => RESPONSE_USAGE });
    await upstream.start();
  });

  afterEach(async () => {
    for (const r of relays.splice(0)) await r.close();
    for (const c of cleanups.splice(0)) await c();
    await upstream.stop();
  });

  async function budgetFor(r: RelayInstance, user: string): Promise<void> {
    const put = await r.request('PUT' as 'POST', `/admin/budgets/user/${user}`, { headers: { authorization: `Bearer ${r.adminToken}` }, body: { daily_usd: BUDGET_USD } });
    expect(put.status).toBe(200);
  }

  /** Sends `count` out-of-band response.create at once; resolves when each got response.done or a refusal. */
  async function burst(c: TestClient, count: number, tag: string): Promise<{ admitted: number; refused: number }> {
    const from = c.events.length;
    const ids = Array.from({ length: count }, (_, i) => `${tag}_${i}`);
    for (const id of ids) c.send({ type: 'response.create', event_id: id, response: { conversation: 'none', instructions: 'Say something long.' } });
    const answered = (): { admitted: number; refused: number } => {
      const later = c.events.slice(from);
      return {
        admitted: later.filter((e) => e.type === 'response.done').length,
        refused: later.filter((e) => e.type === 'error' && ids.includes(String((e.error as { event_id?: unknown }).event_id))).length,
      };
    };
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const a = answered();
      if (a.admitted + a.refused >= count) return a;
      await delay(20);
    }
    throw new Error(`burst ${tag} not answered: ${JSON.stringify(answered())}`);
  }

  async function settledSpend(relaysOfUser: RelayInstance[], user: string): Promise<{ total: bigint; maxRow: bigint; rows: number }> {
    // Rows are written after response.done reaches the client: wait until writes settle.
    let last = -1n;
    for (let i = 0; i < 100; i++) {
      const now = await relaysOfUser[0]!.relay.services.metering.ledger.spend({ user });
      if (now === last) break;
      last = now;
      await delay(100);
    }
    const db = relaysOfUser[0]!.relay.services.db;
    const [row] = await db.query<{ total: unknown; max: unknown; n: unknown }>(
      'SELECT CAST(COALESCE(SUM(cost_nanos), 0) AS TEXT) AS total, CAST(COALESCE(MAX(cost_nanos), 0) AS TEXT) AS max, CAST(COUNT(*) AS TEXT) AS n FROM usage_ledger WHERE user_id = $1',
      [user],
    );
    return { total: BigInt(String(row!.total)), maxRow: BigInt(String(row!.max)), rows: Number(row!.n) };
  }

  function report(label: string, s: { total: bigint; maxRow: bigint; rows: number }): void {
    const overrun = s.total - BUDGET_NANOS;
    // The figure the note records (stdout, not an assertion on time).
    process.stdout.write(`[overrun] ${label}: spent ${s.total} nanos in ${s.rows} rows; budget ${BUDGET_NANOS}; overrun ${overrun > 0n ? overrun : 0n} nanos; one response ${s.maxRow}\n`);
  }

  it('one session: 40 out-of-band response.create (bursts of 8) spend at most the budget plus one response', async () => {
    const r = await startRelay(upstream.env());
    relays.push(r);
    const user = `oob-${randomBytes(3).toString('hex')}`;
    const key = await r.createKey(user, ['realtime']);
    await budgetFor(r, user);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    let admitted = 0;
    let refused = 0;
    for (let round = 0; round < 5; round++) {
      const a = await burst(c, 8, `r${round}`);
      admitted += a.admitted;
      refused += a.refused;
    }
    c.close();
    await c.closed;
    const s = await settledSpend([r], user);
    report('one session, 40 OOB', s);
    expect(admitted + refused).toBe(40);
    expect(refused).toBeGreaterThan(0);
    expect(s.maxRow).toBe(RESPONSE_NANOS);
    expect(s.total).toBeLessThanOrEqual(BUDGET_NANOS + s.maxRow);
    // Refusals speak the protocol: insufficient_quota / budget_exceeded, and were not forwarded.
    const refusal = c.events.find((e) => e.type === 'error') as { error: { type: string; code: string } };
    expect(refusal.error).toMatchObject({ type: 'insufficient_quota', code: 'budget_exceeded' });
    expect(upstream.responsesStarted).toBe(admitted);
    expect(r.relay.services.reservations.size).toBe(0);
  });

  it('ten parallel sessions of one user spend at most the budget plus one response', async () => {
    const r = await startRelay(upstream.env());
    relays.push(r);
    const user = `par-${randomBytes(3).toString('hex')}`;
    const key = await r.createKey(user, ['realtime']);
    await budgetFor(r, user);
    const clients = await Promise.all(Array.from({ length: 10 }, () => TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } })));
    await Promise.all(clients.map((c) => c.waitFor('session.created')));
    for (let round = 0; round < 7; round++) await Promise.all(clients.map((c, i) => burst(c, 1, `s${i}r${round}`)));
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    const s = await settledSpend([r], user);
    report('ten sessions', s);
    expect(s.total).toBeLessThanOrEqual(BUDGET_NANOS + s.maxRow);
  });

  it('two relay instances on PostgreSQL and Redis hold one budget between them', async () => {
    const pg = await freshPostgresUrl();
    cleanups.push(pg.drop);
    const env = { ...upstream.env(), DATABASE_URL: pg.url, REDIS_URL, REDIS_KEY_PREFIX: `test-reserve-${randomBytes(4).toString('hex')}:` };
    const a = await startRelay(env);
    relays.push(a);
    const b = await startRelay(env);
    relays.push(b);
    const user = `two-${randomBytes(3).toString('hex')}`;
    const key = await a.createKey(user, ['realtime']);
    await budgetFor(a, user);
    const clients = await Promise.all(
      Array.from({ length: 10 }, (_, i) => TestClient.connect(`${(i % 2 === 0 ? a : b).wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } })),
    );
    await Promise.all(clients.map((c) => c.waitFor('session.created')));
    for (let round = 0; round < 6; round++) await Promise.all(clients.map((c, i) => burst(c, 2, `m${i}r${round}`)));
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
    const s = await settledSpend([a, b], user);
    report('two instances (PostgreSQL + Redis), ten sessions', s);
    expect(s.total).toBeLessThanOrEqual(BUDGET_NANOS + s.maxRow);
  });
});
