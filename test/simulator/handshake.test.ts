import WebSocket from 'ws';
import { RealtimeSimulator } from '../../src/simulator';
import { TestClient, eventually, failedHandshake, wsRoot, wsUrl, type SessionEvent } from './helpers';

const KEY = 'sk-sim-test-key-123456';
let sim: RealtimeSimulator;

beforeAll(async () => {
  sim = new RealtimeSimulator({ apiKey: KEY, seed: 1 });
  await sim.start();
});
afterAll(() => sim.stop());
afterEach(() => sim.clearFaults());

describe('handshake', () => {
  it('accepts a Bearer key, reports GA session.created and records the connection', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'), {
      headers: { Authorization: `Bearer ${KEY}`, 'X-Client-Request-Id': 'req-42', 'OpenAI-Project': 'proj_1' },
    });
    const created = await c.waitFor<SessionEvent>('session.created');
    expect(created.event_id).toMatch(/^event_/);
    expect(created.session.id).toMatch(/^sess_/);
    expect(created.session.model).toBe('gpt-realtime');
    expect(created.session.type).toBe('realtime');
    expect(created.session.output_modalities).toEqual(['audio']);
    expect(typeof created.session.expires_at).toBe('number');
    // GA has no conversation.created
    expect(await c.quiet(50)).toEqual([]);
    const conns = sim.connections().filter((x) => x.sessionId === created.session.id);
    expect(conns).toHaveLength(1);
    expect(conns[0]).toMatchObject({ model: 'gpt-realtime', dialect: 'ga', clientRequestId: 'req-42', sessionId: created.session.id });
    expect(conns[0]!.headers['openai-project']).toBe('proj_1');
    expect(conns[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
    await c.close();
    await eventually(() => sim.stats.lastCloseFromClient.has(conns[0]!.id));
    expect(sim.stats.lastCloseFromClient.get(conns[0]!.id)).toEqual({ code: 1000, reason: 'bye' });
  });

  it('beta header selects the beta dialect', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-4o-realtime-preview-2025-06-03'), {
      headers: { Authorization: `Bearer ${KEY}`, 'OpenAI-Beta': 'realtime=v1' },
    });
    const created = await c.waitFor<SessionEvent>('session.created');
    expect(created.session.modalities).toEqual(['text', 'audio']);
    expect(created.session.voice).toBe('alloy');
    expect(created.session.type).toBeUndefined();
    const conv = await c.waitFor('conversation.created');
    expect(conv.conversation).toMatchObject({ object: 'realtime.conversation' });
    await c.close();
  });

  it('rejects a wrong key with 401 invalid_api_key', async () => {
    const r = await failedHandshake(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { Authorization: 'Bearer sk-wrong-key-000000' } });
    expect(r.status).toBe(401);
    expect(r.body.error.type).toBe('invalid_request_error');
    expect(r.body.error.code).toBe('invalid_api_key');
    expect(r.body.error.message).toContain('Incorrect API key provided');
    expect(r.body.error.message).not.toContain('sk-wrong-key-000000');
  });

  it('rejects a missing key with 401', async () => {
    const r = await failedHandshake(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe('invalid_api_key');
  });

  it('rejects an unknown model with 404 model_not_found, accepts family members', async () => {
    const r = await failedHandshake(wsUrl(sim.baseUrl, 'model=gpt-9-turbo'), { headers: { Authorization: `Bearer ${KEY}` } });
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('model_not_found');
    expect(r.body.error.message).toContain('gpt-9-turbo');
    const ok = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime-2025-08-28'), { headers: { Authorization: `Bearer ${KEY}` } });
    expect((await ok.waitFor<SessionEvent>('session.created')).session.model).toBe('gpt-realtime-2025-08-28');
    await ok.close();
  });

  it('authenticates browser subprotocols and selects "realtime"', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-4o-realtime-preview-2024-12-17'), {
      protocols: ['realtime', `openai-insecure-api-key.${KEY}`, 'openai-beta.realtime-v1'],
    });
    expect(c.ws.protocol).toBe('realtime');
    const created = await c.waitFor<SessionEvent>('session.created');
    await c.waitFor('conversation.created');
    expect(sim.connections().find((x) => x.sessionId === created.session.id)?.dialect).toBe('beta');
    await c.close();
    const bad = await failedHandshake(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { protocols: ['realtime', 'openai-insecure-api-key.nope'] });
    expect(bad.status).toBe(401);
  });

  it('serves the Azure preview path (beta) with an api-key header', async () => {
    const c = await TestClient.connect(`${wsRoot(sim.baseUrl)}/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-4o-realtime-preview`, {
      headers: { 'api-key': KEY },
    });
    const created = await c.waitFor<SessionEvent>('session.created');
    expect(created.session.model).toBe('gpt-4o-realtime-preview');
    await c.waitFor('conversation.created');
    expect(sim.connections().find((x) => x.sessionId === created.session.id)).toMatchObject({ dialect: 'beta', path: '/openai/realtime?api-version=2024-10-01-preview&deployment=gpt-4o-realtime-preview' });
    await c.close();
  });

  it('serves the Azure GA path and call_id sideband', async () => {
    const c = await TestClient.connect(`${wsRoot(sim.baseUrl)}/openai/v1/realtime?model=gpt-realtime-mini`, { headers: { 'api-key': KEY } });
    expect((await c.waitFor<SessionEvent>('session.created')).session.type).toBe('realtime');
    await c.close();
    // A sideband joins a live WebRTC call (test/simulator/webrtc/call.test.ts); an unknown call is 404.
    const side = await failedHandshake(wsUrl(sim.baseUrl, 'call_id=rtc_abc123'), { headers: { Authorization: `Bearer ${KEY}` } });
    expect(side.status).toBe(404);
    expect(side.body.error.code).toBe('call_not_found');
  });

  it('answers unknown paths and missing model like upstream', async () => {
    const r = await failedHandshake(`${wsRoot(sim.baseUrl)}/v2/whatever`, { headers: { Authorization: `Bearer ${KEY}` } });
    expect(r.status).toBe(404);
    const m = await failedHandshake(wsUrl(sim.baseUrl, 'foo=bar'), { headers: { Authorization: `Bearer ${KEY}` } });
    expect(m.status).toBe(400);
    expect(m.body.error.code).toBe('missing_required_parameter');
  });

  it.each([
    [401, 'invalid_api_key', 'invalid_request_error'],
    [403, 'permission_denied', 'invalid_request_error'],
    [404, 'model_not_found', 'invalid_request_error'],
    [429, 'rate_limit_exceeded', 'requests'],
    [500, 'server_error', 'server_error'],
    [503, 'server_error', 'server_error'],
  ])('handshakeStatus fault %i', async (status, code, type) => {
    sim.setFaults({ handshakeStatus: status });
    const r = await failedHandshake(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { Authorization: `Bearer ${KEY}` } });
    expect(r.status).toBe(status);
    expect(r.body.error).toMatchObject({ code, type });
  });

  it('handshakeStallMs holds the upgrade, then answers', async () => {
    sim.setFaults({ handshakeStallMs: 300 });
    const t0 = Date.now();
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { Authorization: `Bearer ${KEY}` } });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    await c.waitFor('session.created');
    await c.close();
  });

  it('handshakeStallMs = Infinity never answers (client times out)', async () => {
    const opened = sim.stats.connectionsOpened;
    sim.setFaults({ handshakeStallMs: Infinity });
    const ws = new WebSocket(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { Authorization: `Bearer ${KEY}` }, handshakeTimeout: 300 });
    const err = await new Promise<Error>((resolve, reject) => {
      ws.once('open', () => reject(new Error('opened')));
      ws.once('error', resolve);
    });
    expect(err.message).toMatch(/handshake has timed out/);
    expect(sim.stats.connectionsOpened).toBe(opened);
  });
});
