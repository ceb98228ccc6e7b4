import { RealtimeSimulator } from '../../src/simulator';
import { TestClient, failedHandshake, postJson, wsUrl, type SessionEvent } from './helpers';

const KEY = 'sk-mint-test-abcdef';
let clock = Date.parse('2026-03-01T12:00:00Z');
let sim: RealtimeSimulator;
const auth = { Authorization: `Bearer ${KEY}` };

beforeAll(async () => {
  sim = new RealtimeSimulator({ apiKey: KEY, now: () => clock });
  await sim.start();
});
afterAll(() => sim.stop());

describe('ephemeral keys', () => {
  it('beta /realtime/sessions returns the session and a key that opens a WebSocket with that config', async () => {
    const r = await postJson(`${sim.baseUrl}/realtime/sessions`, { model: 'gpt-4o-realtime-preview-2025-06-03', voice: 'verse', instructions: 'From the mint.' }, auth);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ object: 'realtime.session', model: 'gpt-4o-realtime-preview-2025-06-03', voice: 'verse', instructions: 'From the mint.' });
    expect(String(r.json.id)).toMatch(/^sess_/);
    const secret = r.json.client_secret as { value: string; expires_at: number };
    expect(secret.value).toMatch(/^ek_sim_/);
    expect(secret.expires_at).toBe(Math.floor(clock / 1000) + 60);
    const minted = sim.stats.mintedKeys;
    expect(minted).toBeGreaterThanOrEqual(1);

    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-4o-realtime-preview-2025-06-03'), {
      protocols: ['realtime', `openai-insecure-api-key.${secret.value}`, 'openai-beta.realtime-v1'],
    });
    const created = await c.waitFor<SessionEvent>('session.created');
    expect(created.session).toMatchObject({ voice: 'verse', instructions: 'From the mint.' });
    await c.close();
  });

  it('GA /realtime/client_secrets honours expires_after and expires the key', async () => {
    const r = await postJson(
      `${sim.baseUrl}/realtime/client_secrets`,
      { expires_after: { anchor: 'created_at', seconds: 10 }, session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Short-lived.' } },
      auth,
    );
    expect(r.status).toBe(200);
    const value = String(r.json.value);
    expect(value).toMatch(/^ek_sim_/);
    expect(r.json.expires_at).toBe(Math.floor(clock / 1000) + 10);
    expect(r.json.session).toMatchObject({ type: 'realtime', object: 'realtime.session', model: 'gpt-realtime', instructions: 'Short-lived.' });

    // A key can open several sessions until it expires.
    for (let i = 0; i < 2; i++) {
      const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { Authorization: `Bearer ${value}` } });
      expect((await c.waitFor<SessionEvent>('session.created')).session.instructions).toBe('Short-lived.');
      await c.close();
    }
    clock += 11_000;
    const late = await failedHandshake(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { Authorization: `Bearer ${value}` } });
    expect(late.status).toBe(401);
    expect(late.body.error.code).toBe('invalid_api_key');
  });

  it('defaults to 600 seconds and rejects out-of-range seconds and bad anchors', async () => {
    const d = await postJson(`${sim.baseUrl}/realtime/client_secrets`, {}, auth);
    expect(d.status).toBe(200);
    expect(d.json.expires_at).toBe(Math.floor(clock / 1000) + 600);
    expect(d.json.session).toMatchObject({ type: 'realtime', model: 'gpt-realtime' });
    for (const [seconds, code] of [[9, 'integer_below_min_value'], [7201, 'integer_above_max_value'], [60.5, 'invalid_type']] as const) {
      const r = await postJson(`${sim.baseUrl}/realtime/client_secrets`, { expires_after: { anchor: 'created_at', seconds } }, auth);
      expect(r.status).toBe(400);
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code, param: 'expires_after.seconds' });
    }
    const anchor = await postJson(`${sim.baseUrl}/realtime/client_secrets`, { expires_after: { anchor: 'now', seconds: 60 } }, auth);
    expect(anchor.status).toBe(400);
    const model = await postJson(`${sim.baseUrl}/realtime/client_secrets`, { session: { type: 'realtime', model: 'gpt-nope' } }, auth);
    expect(model.status).toBe(400);
    expect(model.json.error).toMatchObject({ param: 'session.model' });
  });

  it('transcription_sessions mints a key', async () => {
    const r = await postJson(`${sim.baseUrl}/realtime/transcription_sessions`, { input_audio_transcription: { model: 'gpt-4o-transcribe' } }, auth);
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ object: 'realtime.transcription_session', input_audio_transcription: { model: 'gpt-4o-transcribe' } });
    const secret = r.json.client_secret as { value: string };
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'intent=transcription'), { headers: { Authorization: `Bearer ${secret.value}`, 'OpenAI-Beta': 'realtime=v1' } });
    expect((await c.waitFor<SessionEvent>('session.created')).session.input_audio_transcription).toMatchObject({ model: 'gpt-4o-transcribe' });
    await c.close();
  });

  it('requires the real key, and answers malformed requests with JSON errors', async () => {
    const noAuth = await postJson(`${sim.baseUrl}/realtime/client_secrets`, {});
    expect(noAuth.status).toBe(401);
    expect(noAuth.json.error).toMatchObject({ code: 'invalid_api_key' });
    const minted = await postJson(`${sim.baseUrl}/realtime/client_secrets`, {}, auth);
    const withEk = await postJson(`${sim.baseUrl}/realtime/client_secrets`, {}, { Authorization: `Bearer ${String(minted.json.value)}` });
    expect(withEk.status).toBe(401);
    const azure = await postJson(`${sim.baseUrl}/realtime/sessions`, { model: 'gpt-4o-realtime-preview-2024-12-17' }, { 'api-key': KEY });
    expect(azure.status).toBe(200);
    const bad = await postJson(`${sim.baseUrl}/realtime/sessions`, '{"model": ', auth);
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ type: 'invalid_request_error' });
    const badField = await postJson(`${sim.baseUrl}/realtime/sessions`, { modalities: ['audio'] }, auth);
    expect(badField.status).toBe(400);
    expect(badField.json.error).toMatchObject({ code: 'invalid_value', param: 'modalities' });
    const notFound = await postJson(`${sim.baseUrl}/realtime/nothing`, {}, auth);
    expect(notFound.status).toBe(404);
    const get = await fetch(`${sim.baseUrl}/realtime/client_secrets`, { headers: auth });
    expect(get.status).toBe(405);
  });
});
