import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { delay, refusedUpgrade, TestClient } from '../support/ws-client';
import { parse, value, type Sample } from './exposition';

async function scrape(url: string): Promise<{ text: string; samples: Sample[]; contentType: string | null }> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, samples: parse(text), contentType: res.headers.get('content-type') };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

describe('GET /metrics', () => {
  const relays: RelayInstance[] = [];
  afterEach(async () => {
    for (const r of relays.splice(0)) await r.close();
  });

  it('exposes session, frame, upstream, error, usage and ledger series after real sessions, never labelled by user', async () => {
    const r = await startRelay();
    relays.push(r);
    const user = `metrics-user-${randomUUID()}`;
    const key = await r.createKey(user, ['realtime']);
    const sim = r.relay.services.simulator!;

    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(4800, 1).toString('base64') });
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    // An upstream error event, and a relay-originated one.
    sim.setFaults({ errorOnResponseCreate: { type: 'server_error', code: 'sim_boom', message: 'boom' } });
    c.send({ type: 'response.create' });
    await c.waitFor((e) => e.type === 'error' && (e.error as { code?: string }).code === 'sim_boom');
    c.ws.send('this is not json');
    await c.waitFor((e) => e.type === 'error' && (e.error as { code?: string }).code === 'invalid_json');
    c.close();
    await c.closed;

    // Refused before the upgrade, and an upstream that refuses the handshake.
    expect((await refusedUpgrade(r.wsUrl, { headers: { authorization: 'Bearer rk_not_a_real_key' } })).status).toBe(401);
    sim.setFaults({ errorOnResponseCreate: null, handshakeStatus: 503 });
    const failing = await TestClient.connect(r.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    await failing.closed;
    sim.setFaults({ handshakeStatus: null });

    let m = await scrape(`${r.baseUrl}/metrics`);
    for (let i = 0; i < 100 && (value(m.samples, 'relay_sessions_closed_total') ?? 0) < 2; i++) {
      await delay(30);
      m = await scrape(`${r.baseUrl}/metrics`);
    }
    const s = m.samples;
    expect(m.contentType).toMatch(/^text\/plain/);

    expect(value(s, 'relay_sessions_active')).toBe(0);
    expect(value(s, 'relay_sessions_opened_total')).toBe(2);
    expect(value(s, 'relay_sessions_closed_total', { reason: 'client_closed' })).toBe(1);
    expect(value(s, 'relay_sessions_closed_total', { reason: 'handshake_failed' })).toBe(1);
    expect(value(s, 'relay_session_duration_seconds_count')).toBe(2);

    expect(value(s, 'relay_frames_total', { direction: 'client_to_upstream' })).toBeGreaterThanOrEqual(3);
    expect(value(s, 'relay_frames_total', { direction: 'upstream_to_client' })).toBeGreaterThan(3);
    expect(value(s, 'relay_bytes_total', { direction: 'client_to_upstream' })).toBeGreaterThan(6400);
    expect(value(s, 'relay_bytes_total', { direction: 'upstream_to_client' })).toBeGreaterThan(0);

    expect(value(s, 'relay_upstream_handshake_seconds_count')).toBe(1);
    expect(value(s, 'relay_upstream_handshake_failures_total', { status: '503' })).toBe(1);

    expect(value(s, 'relay_errors_total', { source: 'upstream', kind: 'server_error' })).toBe(1);
    expect(value(s, 'relay_errors_total', { source: 'relay', kind: 'invalid_json' })).toBe(1);
    expect(value(s, 'relay_errors_total', { source: 'relay', kind: 'invalid_api_key' })).toBe(1);

    const billed = { provider: 'simulator', model: 'gpt-realtime', billing: 'exact' };
    expect(value(s, 'relay_tokens_total', { ...billed, kind: 'output_audio' })).toBeGreaterThan(0);
    expect(value(s, 'relay_tokens_total', { ...billed, kind: 'input_text' })).toBeGreaterThan(0);
    expect(value(s, 'relay_cost_usd_total', billed)).toBeGreaterThan(0);
    expect(value(s, 'relay_ledger_write_seconds_count', { result: 'inserted' })).toBeGreaterThanOrEqual(1);
    expect(value(s, 'relay_ledger_spool_depth')).toBe(0);

    // Default process metrics, from this relay's own registry.
    expect(value(s, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(value(s, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);

    // Nothing that identifies a user or credential, in any label or anywhere else.
    expect(m.text).not.toContain(user);
    expect(m.text).not.toContain(key);
    const labelNames = new Set(s.flatMap((x) => Object.keys(x.labels)));
    for (const forbidden of ['user', 'tenant', 'key', 'key_id', 'session', 'session_id']) expect(labelNames).not.toContain(forbidden);
  });

  it('keeps relays in one process apart (a registry each)', async () => {
    const a = await startRelay();
    relays.push(a);
    const b = await startRelay();
    relays.push(b);
    const key = await a.createKey('metrics-a', ['realtime']);
    const c = await TestClient.connect(a.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.close();
    await c.closed;
    expect(value((await scrape(`${b.baseUrl}/metrics`)).samples, 'relay_sessions_opened_total')).toBe(0);
    expect(value((await scrape(`${a.baseUrl}/metrics`)).samples, 'relay_sessions_opened_total')).toBe(1);
  });

  it('serves /metrics on METRICS_PORT only, when it is set', async () => {
    const port = await freePort();
    const r = await startRelay({ METRICS_PORT: String(port) });
    relays.push(r);
    expect((await fetch(`${r.baseUrl}/metrics`)).status).toBe(404);
    const m = await scrape(`http://127.0.0.1:${port}/metrics`);
    expect(value(m.samples, 'relay_sessions_active')).toBe(0);
    await r.close();
    // The metrics listener closes with the relay.
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });
});
