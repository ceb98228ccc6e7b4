/**
 * Upstream and client faults in the middle of a conversation, through a full relay with a real
 * ledger: nothing hangs, the client is told, and every response the upstream started is
 * accounted for (exactly when its usage arrived, as an estimate when it did not).
 */
import type { LedgerEntry } from '../../src/storage/ledger';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { delay, type TestClient } from '../support/ws-client';
import { connect, crashWatch, HAMMER_ENV, isOpen, until } from './helpers';

const CANCEL_WAIT_MS = 800;
/** One second of pcm16 at 24 kHz: 10 input audio tokens by the estimate's rule. */
const ONE_SECOND = Buffer.alloc(48_000, 7).toString('base64');

interface LedgerRow {
  response_id: string;
  upstream_response_id: string | null;
  session_id: string;
  status: string;
  estimated: number | boolean;
  input_audio_tokens: number;
  output_audio_tokens: number;
}

describe('faults mid-conversation', () => {
  let r: RelayInstance;
  const crashes = crashWatch();

  beforeAll(() => crashes.install());
  afterAll(() => crashes.uninstall());

  beforeEach(async () => {
    r = await startRelay({ ...HAMMER_ENV, CANCEL_WAIT_MS: String(CANCEL_WAIT_MS) });
  });

  afterEach(async () => {
    await r.close();
    crashes.assertNone();
  });

  const sim = (): NonNullable<RelayInstance['relay']['services']['simulator']> => {
    const s = r.relay.services.simulator;
    if (!s) throw new Error('no simulator');
    return s;
  };

  /** The relay's session id of the one session now open: the simulator sees it as X-Client-Request-Id. */
  function sessionIdOfOnlyConnection(): string {
    const [conn] = sim().connections();
    if (!conn?.clientRequestId) throw new Error('no upstream connection with a client request id');
    return conn.clientRequestId;
  }

  async function rowsOf(sessionId: string): Promise<LedgerRow[]> {
    return r.relay.services.db.query<LedgerRow>('SELECT response_id, upstream_response_id, session_id, status, estimated, input_audio_tokens, output_audio_tokens FROM usage_ledger WHERE session_id = $1', [sessionId]);
  }

  /** Resolves once the relay has finished the session on both legs (and billed its leftovers). */
  async function sessionsDrained(ms: number): Promise<number> {
    const t0 = Date.now();
    const left = await until(() => r.relay.services.sessions.size, (n) => n === 0, ms);
    if (left !== 0) throw new Error(`${left} session(s) still open after ${ms} ms`);
    return Date.now() - t0;
  }

  async function openSession(user: string): Promise<{ c: TestClient; sessionId: string }> {
    const key = await r.createKey(user, ['realtime']);
    const c = await connect(r, key);
    return { c, sessionId: sessionIdOfOnlyConnection() };
  }

  it('an upstream that stalls after response.create: the client leaves, the relay cancels, waits at most CANCEL_WAIT_MS, closes and estimates', async () => {
    const { c, sessionId } = await openSession('stalled');
    sim().setFaults({ stallResponses: true });
    c.send({ type: 'input_audio_buffer.append', audio: ONE_SECOND });
    c.send({ type: 'input_audio_buffer.commit' });
    c.send({ type: 'response.create' });
    await until(() => sim().stats.responses, (n) => n === 1);
    await delay(200);
    expect(c.types().filter((t) => t.startsWith('response.'))).toEqual([]);

    const t0 = Date.now();
    c.close();
    await sessionsDrained(CANCEL_WAIT_MS + 3000);
    const elapsed = Date.now() - t0;
    // It did wait for the cancel to be answered, and no longer than it may.
    expect(elapsed).toBeGreaterThanOrEqual(CANCEL_WAIT_MS - 50);
    expect(elapsed).toBeLessThanOrEqual(CANCEL_WAIT_MS + 1500);
    expect(sim().stats.receivedClientEvents.map((e) => e.type)).toContain('response.cancel');
    await until(() => sim().connections().length, (n) => n === 0, 2000);
    expect(sim().connections()).toHaveLength(0);

    const rows = await until(() => rowsOf(sessionId), (x) => x.length > 0, 3000);
    expect(rows).toHaveLength(1);
    expect(Boolean(rows[0].estimated)).toBe(true);
    // The turn's one second of input audio, at 10 tokens per second.
    expect(rows[0].input_audio_tokens).toBe(10);
  });

  it('an upstream that closes with 1011 mid-response: the client gets an error and 1011, the response an estimate', async () => {
    const { c, sessionId } = await openSession('dropped');
    sim().setFaults({ closeMidResponseWithCode: 1011 });
    c.send({ type: 'input_audio_buffer.append', audio: ONE_SECOND });
    c.send({ type: 'response.create' });
    const created = (await c.waitFor('response.created')) as { response: { id: string } };
    const closed = await c.closed;
    expect(closed.code).toBe(1011);
    const error = c.events.find((e) => e.type === 'error') as { error: { type: string; code: string } } | undefined;
    expect(error?.error).toMatchObject({ type: 'server_error', code: 'upstream_connection_lost' });
    await sessionsDrained(3000);

    const row = await until(() => r.relay.services.metering.ledger.find('simulator', created.response.id), (x): x is LedgerEntry => x !== null, 3000);
    expect(row).toMatchObject({ sessionId, user: 'dropped', estimated: true });
    expect(row?.usage.input_audio).toBe(10);
    // Whatever audio had streamed before the close is counted, never more than the whole reply.
    expect(row?.usage.output_audio).toBeGreaterThanOrEqual(0);
  });

  it("errorOnResponseCreate: the client sees the upstream's error and the session goes on", async () => {
    const { c, sessionId } = await openSession('refused');
    sim().setFaults({ errorOnResponseCreate: { type: 'server_error', code: 'overloaded', message: 'Try later' } });
    c.send({ type: 'response.create', event_id: 'evt_refused' });
    const err = (await c.waitFor('error')) as { error: { type: string; code: string; message: string; event_id: string } };
    expect(err.error).toMatchObject({ type: 'server_error', code: 'overloaded', message: 'Try later', event_id: 'evt_refused' });
    expect(isOpen(c)).toBe(true);

    sim().clearFaults();
    const from = c.events.length;
    c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
    const done = (await c.waitFor('response.done', 8000, from)) as { response: { id: string; status: string } };
    expect(done.response.status).toBe('completed');

    // The refused request is not "in flight": leaving now needs no cancel wait.
    const t0 = Date.now();
    c.close();
    await sessionsDrained(3000);
    expect(Date.now() - t0).toBeLessThan(CANCEL_WAIT_MS);

    const rows = await until(() => rowsOf(sessionId), (x) => x.length > 0, 3000);
    expect(rows.map((x) => [x.upstream_response_id, Boolean(x.estimated)])).toEqual([[done.response.id, false]]);
  });

  it('a client that vanishes without a close frame mid-response: upstream closed, usage billed exactly', async () => {
    const { c, sessionId } = await openSession('vanished');
    c.send({ type: 'input_audio_buffer.append', audio: ONE_SECOND });
    c.send({ type: 'input_audio_buffer.commit' });
    c.send({ type: 'response.create' });
    const created = (await c.waitFor('response.created')) as { response: { id: string } };
    await c.waitFor('response.output_audio.delta');
    c.ws.terminate();

    await sessionsDrained(CANCEL_WAIT_MS + 3000);
    await until(() => sim().connections().length, (n) => n === 0, 2000);
    expect(sim().connections()).toHaveLength(0);
    // The relay cancelled the response rather than leaving it to run on.
    expect(sim().stats.receivedClientEvents.map((e) => e.type)).toContain('response.cancel');

    const row = await until(() => r.relay.services.metering.ledger.find('simulator', created.response.id), (x): x is LedgerEntry => x !== null, 3000);
    // The cancelled response's response.done arrived after the cancel: the row is exact and
    // equals what the upstream reported for this session.
    expect(row).toMatchObject({ sessionId, user: 'vanished', estimated: false, status: 'cancelled' });
    const upstream = sim().stats.usageByClientRequestId.get(sessionId);
    expect(upstream?.responses).toBe(1);
    expect(row?.usage).toMatchObject({
      input_text: upstream?.input_text_tokens,
      input_audio: upstream?.input_audio_tokens,
      cached_text: upstream?.cached_text_tokens,
      cached_audio: upstream?.cached_audio_tokens,
      output_text: upstream?.output_text_tokens,
      output_audio: upstream?.output_audio_tokens,
    });
  });
});
