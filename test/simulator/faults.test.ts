import { RealtimeSimulator } from '../../src/simulator';
import { TestClient, eventually, wsUrl, type ErrorEvent, type ResponseEvent, type SessionEvent } from './helpers';

let sim: RealtimeSimulator;
beforeEach(async () => {
  sim = new RealtimeSimulator({ seed: 11, deltaIntervalMs: 10 });
  await sim.start();
});
afterEach(() => sim.stop());

const url = (): string => wsUrl(sim.baseUrl, 'model=gpt-realtime');
const audioDeltas = (c: TestClient): number => c.events.filter((e) => e.type === 'response.output_audio.delta').length;

describe('faults', () => {
  it('dropMidResponseAfterDeltas destroys the socket without a close frame', async () => {
    sim.setFaults({ dropMidResponseAfterDeltas: 3 });
    const c = await TestClient.connect(url());
    c.send({ type: 'response.create' });
    const closed = await c.closed;
    expect(closed.code).toBe(1006);
    expect(audioDeltas(c)).toBe(3);
    expect(c.events.some((e) => e.type === 'response.done')).toBe(false);
    await eventually(() => sim.stats.connectionsClosed === 1);
    expect(sim.stats.responseDoneSent).toBe(0);
    expect(sim.stats.usageTotals.responses).toBe(0);
    // The server dropped it: nothing is recorded as a client close.
    expect(sim.stats.lastCloseFromClient.size).toBe(0);
  });

  it('closeMidResponseWithCode closes with that code after the first delta', async () => {
    sim.setFaults({ closeMidResponseWithCode: 1011 });
    const c = await TestClient.connect(url());
    c.send({ type: 'response.create' });
    const closed = await c.closed;
    expect(closed.code).toBe(1011);
    expect(audioDeltas(c)).toBe(1);
  });

  it('stallResponses accepts response.create and then sends nothing', async () => {
    sim.setFaults({ stallResponses: true });
    const c = await TestClient.connect(url());
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    expect(await c.quiet(150)).toEqual([]);
    c.send({ type: 'response.cancel' });
    expect(await c.quiet(100)).toEqual([]);
    c.send({ type: 'response.create', event_id: 'again' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ code: 'conversation_already_has_active_response', event_id: 'again' });
    expect(sim.stats.responses).toBe(1);
    expect(sim.stats.responseDoneSent).toBe(0);
    await c.close();
  });

  it('errorOnResponseCreate answers with the given error event', async () => {
    const c = await TestClient.connect(url());
    sim.setFaults({ errorOnResponseCreate: { type: 'server_error', code: 'overloaded', message: 'Try later' } });
    c.send({ type: 'response.create', event_id: 'evt_x' });
    const err = await c.waitFor<ErrorEvent>('error');
    expect(err.error).toEqual({ type: 'server_error', code: 'overloaded', message: 'Try later', param: null, event_id: 'evt_x' });
    expect(await c.quiet(60)).toEqual([]);
    sim.clearFaults();
    c.send({ type: 'response.create' });
    expect((await c.waitFor<ResponseEvent>('response.done')).response.status).toBe('completed');
    await c.close();
  });

  it('sessionMaxMs expires the session with session_expired and close 1001', async () => {
    sim.setFaults({ sessionMaxMs: 250 });
    const before = Math.floor(Date.now() / 1000);
    const c = await TestClient.connect(url());
    const created = await c.waitFor<SessionEvent>('session.created');
    expect(created.session.expires_at).toBeGreaterThanOrEqual(before);
    expect(created.session.expires_at).toBeLessThanOrEqual(before + 2);
    const err = await c.waitFor<ErrorEvent>('error', 2000);
    expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'session_expired' });
    expect(err.error.message).toMatch(/maximum duration/);
    expect((await c.closed).code).toBe(1001);
  });

  it('faults apply to new responses only, not one already streaming', async () => {
    const c = await TestClient.connect(url());
    c.send({ type: 'response.create' });
    await c.waitFor('response.output_audio.delta');
    sim.setFaults({ closeMidResponseWithCode: 1011, dropMidResponseAfterDeltas: 1 });
    expect((await c.waitFor<ResponseEvent>('response.done')).response.status).toBe('completed');
    c.send({ type: 'response.create' });
    expect((await c.closed).code).toBe(1006);
  });

  it('stop() closes open sockets with 1001', async () => {
    const c = await TestClient.connect(url());
    await c.waitFor('session.created');
    await sim.stop();
    expect((await c.closed).code).toBe(1001);
    expect(sim.connections()).toEqual([]);
  });
});

describe('unsendable close codes', () => {
  it('closeMidResponseWithCode 1006 degrades to a drop', async () => {
    sim.setFaults({ closeMidResponseWithCode: 1006 });
    const c = await TestClient.connect(url());
    c.send({ type: 'response.create' });
    expect((await c.closed).code).toBe(1006);
  });
});
