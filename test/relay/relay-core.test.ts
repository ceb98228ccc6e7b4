import type { AddressInfo, Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { CloseCode } from '../../src/relay/close-codes';
import { startCoreHarness, type CoreHarness } from '../support/core-harness';
import { delay, refusedUpgrade, TestClient } from '../support/ws-client';

function audioAppend(i: number, bytes = 4800): string {
  // Distinct content per frame so order and identity can be checked byte for byte.
  return JSON.stringify({ type: 'input_audio_buffer.append', event_id: `evt_${i}`, audio: Buffer.alloc(bytes, i % 251).toString('base64') });
}

describe('relay core against the simulator', () => {
  let h: CoreHarness;
  afterEach(async () => {
    await h?.close();
  });

  it.each([
    ['ga', 'gpt-realtime', 'response.output_audio.delta'],
    ['beta', 'gpt-4o-realtime-preview-2025-06-03', 'response.audio.delta'],
  ])('relays a %s conversation byte-identical both ways', async (dialect, model, audioDelta) => {
    h = await startCoreHarness({ REALTIME_API_VERSION: dialect });
    // A client of the upstream's own dialect: nothing to translate.
    const c = await TestClient.connect(`${h.url}?model=${model}`, dialect === 'beta' ? { headers: { 'OpenAI-Beta': 'realtime=v1' } } : {});
    await c.waitFor('session.created');
    const sent = [
      JSON.stringify({ type: 'session.update', session: dialect === 'ga' ? { type: 'realtime', instructions: 'Be brief.' } : { instructions: 'Be brief.' } }),
      audioAppend(1),
      audioAppend(2),
      JSON.stringify({ type: 'input_audio_buffer.commit' }),
      // With an event_id: one without gets the relay's own (see relay-session), the only rewrite.
      JSON.stringify({ type: 'response.create', event_id: 'evt_3' }),
    ];
    for (const f of sent) c.ws.send(f);
    await c.waitFor('response.done');
    // Client → upstream: exactly the bytes sent, in order.
    const received = h.simulator.stats.receivedClientEvents.map((e) => e.raw);
    expect(received).toEqual(sent);
    // Upstream → client: the dialect's own event names arrive, and audio deltas came through.
    expect(c.types()).toContain(audioDelta);
    expect(h.simulator.connections()[0].dialect).toBe(dialect);
    const done = c.events.find((e) => e.type === 'response.done') as { response: { usage: { total_tokens: number } } };
    expect(done.response.usage.total_tokens).toBeGreaterThan(0);
    c.close();
    await c.closed;
  });

  it('keeps order under a burst of thousands of frames sent before the upstream is open', async () => {
    h = await startCoreHarness({ CLIENT_QUEUE_MAX_FRAMES: '5000' });
    const c = await TestClient.connect(h.url);
    const frames = Array.from({ length: 3000 }, (_, i) => audioAppend(i, 300));
    for (const f of frames) c.ws.send(f);
    const deadline = Date.now() + 15000;
    while (h.simulator.stats.receivedClientEvents.length < frames.length && Date.now() < deadline) await delay(20);
    expect(h.simulator.stats.receivedClientEvents.map((e) => e.raw)).toEqual(frames);
    c.close();
  });

  it('closes the upstream when the client closes, and the client when the upstream closes', async () => {
    h = await startCoreHarness();
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    const before = h.simulator.stats.connectionsClosed;
    c.close(1000);
    const deadline = Date.now() + 1000;
    while (h.simulator.stats.connectionsClosed === before && Date.now() < deadline) await delay(10);
    expect(h.simulator.stats.connectionsClosed).toBe(before + 1);

    h.simulator.setFaults({ sessionMaxMs: 100 });
    const c2 = await TestClient.connect(h.url);
    const closed = await c2.closed;
    // The upstream's maximum-duration close (1001) reaches the client as sent.
    expect(closed.code).toBe(1001);
    expect(c2.types()).toContain('error');
  });

  it('cancels an in-flight response when the client leaves, and waits for its response.done', async () => {
    h = await startCoreHarness();
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.created');
    c.close();
    const deadline = Date.now() + 3000;
    while (h.simulator.stats.cancelled === 0 && Date.now() < deadline) await delay(10);
    expect(h.simulator.stats.cancelled).toBe(1);
    expect(h.simulator.stats.responseDoneSent).toBe(1);
  });

  it('maps an upstream drop mid-response to an error event and close 1011', async () => {
    h = await startCoreHarness();
    h.simulator.setFaults({ dropMidResponseAfterDeltas: 2 });
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.internalError);
    const err = c.events.find((e) => e.type === 'error') as { error: { code: string } };
    expect(err.error.code).toBe('upstream_connection_lost');
  });

  it.each([
    [401, CloseCode.upstreamUnauthorized, 'upstream_unauthorized'],
    [403, CloseCode.upstreamForbidden, 'upstream_forbidden'],
    [404, CloseCode.upstreamNotFound, 'model_not_found'],
    [429, CloseCode.upstreamRateLimited, 'rate_limit_exceeded'],
    [500, CloseCode.upstreamServerError, 'upstream_error'],
    [503, CloseCode.upstreamServerError, 'upstream_error'],
  ])('maps upstream handshake HTTP %i to close %i (%s)', async (status, closeCode, code) => {
    h = await startCoreHarness();
    h.simulator.setFaults({ handshakeStatus: status });
    const c = await TestClient.connect(h.url);
    const closed = await c.closed;
    expect(closed.code).toBe(closeCode);
    expect(c.events).toHaveLength(1);
    expect(c.events[0]).toMatchObject({ type: 'error', error: { code } });
  });

  it('maps an upstream handshake timeout to close 4504', async () => {
    h = await startCoreHarness({ UPSTREAM_CONNECT_TIMEOUT_MS: '300' });
    h.simulator.setFaults({ handshakeStallMs: 5000 });
    const c = await TestClient.connect(h.url);
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.upstreamTimeout);
    expect(c.events[0]).toMatchObject({ type: 'error', error: { code: 'upstream_timeout' } });
  });

  it('maps an unreachable upstream to close 4503', async () => {
    h = await startCoreHarness();
    await h.simulator.stop();
    const c = await TestClient.connect(h.url);
    const closed = await c.closed;
    expect(closed.code).toBe(CloseCode.upstreamUnavailable);
  });

  it('answers binary, invalid JSON, non-event and oversized frames with an error and keeps the session', async () => {
    h = await startCoreHarness({ MAX_FRAME_BYTES: '65536' });
    const other = await TestClient.connect(h.url);
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    c.ws.send('not json at all');
    c.ws.send('[1,2,3]');
    c.ws.send(audioAppend(1, 70000));
    for (const code of ['binary_frame_unsupported', 'invalid_json', 'invalid_event', 'frame_too_large']) {
      await c.waitFor((e) => (e.error as { code?: string } | undefined)?.code === code);
    }
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    other.send({ type: 'response.create' });
    await other.waitFor('response.done');
    // Nothing malformed reached the upstream.
    expect(h.simulator.stats.receivedClientEvents.map((e) => e.type)).toEqual(['response.create', 'response.create']);
  });

  it('refuses a model outside ALLOWED_MODELS at the upgrade with HTTP 400 listing the models served', async () => {
    h = await startCoreHarness({ ALLOWED_MODELS: 'gpt-realtime', DEFAULT_MODEL: 'gpt-realtime' }, { servedModels: () => ['gpt-realtime'] });
    const refused = await refusedUpgrade(`${h.url}?model=gpt-realtime-mini`);
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({ error: { code: 'model_not_allowed', param: 'model', type: 'invalid_request_error' }, models: ['gpt-realtime'] });
    expect((refused.body.error as { message: string }).message).toMatch(/Models served: gpt-realtime\./);
    expect(h.simulator.stats.connectionsOpened).toBe(0);
    const ok = await TestClient.connect(h.url);
    const created = (await ok.waitFor('session.created')) as { session: { model: string } };
    expect(created.session.model).toBe('gpt-realtime');
  });

  it('bounds memory for a client that does not read (backpressure pauses the upstream)', async () => {
    // An upstream that floods 48 MB as fast as the relay will take it: far more than kernel
    // socket buffers can absorb, so without backpressure the relay would buffer most of it.
    const flood = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => flood.once('listening', r));
    const frame = JSON.stringify({ type: 'response.output_audio.delta', delta: Buffer.alloc(72_000, 3).toString('base64') });
    let sent = 0;
    flood.on('connection', (ws) => {
      const pump = (): void => {
        while (sent < 500 && ws.bufferedAmount < 4 * 1024 * 1024) {
          ws.send(frame);
          sent++;
        }
        if (sent < 500 && ws.readyState === ws.OPEN) setTimeout(pump, 5);
      };
      pump();
    });
    const port = (flood.address() as AddressInfo).port;
    h = await startCoreHarness({ BACKPRESSURE_HIGH_WATER_BYTES: '262144' }, {}, `http://127.0.0.1:${port}/v1`);
    const c = await TestClient.connect(h.url);
    // Stop reading at the TCP level: the relay's writes to this client back up.
    const raw = (c.ws as unknown as { _socket: Socket })._socket;
    raw.pause();
    let maxBuffered = 0;
    let sawPaused = false;
    for (let i = 0; i < 100; i++) {
      await delay(20);
      const session = [...(h.sessions as unknown as { sessions: Set<{ client: WebSocket; upstream: WebSocket | null }> }).sessions][0];
      if (!session) continue;
      maxBuffered = Math.max(maxBuffered, session.client.bufferedAmount);
      sawPaused ||= session.upstream?.isPaused ?? false;
    }
    expect(sawPaused).toBe(true);
    // The high-water mark plus the one frame that tripped it, and nothing like the 48 MB sent.
    expect(maxBuffered).toBeLessThan(262144 + 2 * frame.length);
    raw.resume();
    // Once the client reads again, everything arrives.
    const deadline = Date.now() + 20000;
    while (c.events.length < 500 && Date.now() < deadline) await delay(50);
    expect(c.events.length).toBe(500);
    c.close();
    flood.close();
  });

  it('closes an idle session with 4000 and a session past its maximum duration with 4001', async () => {
    h = await startCoreHarness({ IDLE_TIMEOUT_MS: '300', MAX_SESSION_MS: '60000' });
    const idle = await TestClient.connect(h.url);
    await idle.waitFor('session.created');
    const idleClose = await idle.closed;
    expect(idleClose.code).toBe(CloseCode.idleTimeout);
    expect(idle.events.filter((e) => e.type === 'error')).toEqual([expect.objectContaining({ error: expect.objectContaining({ code: 'idle_timeout' }) })]);
    await h.close();

    h = await startCoreHarness({ MAX_SESSION_MS: '1000' });
    const long = await TestClient.connect(h.url);
    const started = Date.now();
    const longClose = await long.closed;
    expect(longClose.code).toBe(CloseCode.maxDuration);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('drops a client that stops answering pings, and closes its upstream', async () => {
    h = await startCoreHarness({ PING_INTERVAL_MS: '100' });
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    const before = h.simulator.stats.connectionsClosed;
    // A peer that vanished without a close: its socket no longer reads, so no pong comes back.
    (c.ws as unknown as { _socket: Socket })._socket.pause();
    const deadline = Date.now() + 3000;
    while (h.sessions.size > 0 && Date.now() < deadline) await delay(20);
    expect(h.sessions.size).toBe(0);
    while (h.simulator.stats.connectionsClosed === before && Date.now() < deadline) await delay(20);
    expect(h.simulator.stats.connectionsClosed).toBe(before + 1);
    c.ws.terminate();
  });

  it('keeps a healthy session alive across many ping intervals', async () => {
    // Intervals long enough that a loaded CI machine still answers each ping in time.
    h = await startCoreHarness({ PING_INTERVAL_MS: '200' });
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    await delay(1500);
    expect(h.sessions.size).toBe(1);
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    c.close();
  });

  it('treats event types named like Object.prototype members as ordinary events', async () => {
    const guarded: string[] = [];
    h = await startCoreHarness({}, {
      planSession: async () => ({
        hooks: {
          clientGuards: { 'response.create': () => (guarded.push('response.create'), { action: 'forward' as const }) },
          upstreamTaps: { 'response.done': () => undefined },
        },
      }),
    });
    const c = await TestClient.connect(h.url);
    await c.waitFor('session.created');
    for (const type of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) c.ws.send(JSON.stringify({ type }));
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    expect(guarded).toEqual(['response.create']);
    // They reached the upstream, which answers unknown types with its own error.
    expect(h.simulator.stats.receivedClientEvents.map((e) => e.type)).toEqual(['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf', 'response.create']);
    c.close();
  });
});

