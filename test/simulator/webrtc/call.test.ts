import WebSocket from 'ws';
import { RealtimeSimulator } from '../../../src/simulator';
import { openClientPeer, type ClientPeer } from '../../support/webrtc-peer';

jest.setTimeout(30_000);

const KEY = 'sk-sim-webrtc-test';

async function postOffer(sim: RealtimeSimulator, body: string | FormData, contentType?: string, key = KEY): Promise<Response> {
  return fetch(`${sim.baseUrl}/realtime/calls`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, ...(contentType ? { 'content-type': contentType } : {}) },
    body,
  });
}

describe('simulator WebRTC calls', () => {
  let sim: RealtimeSimulator;
  let peer: ClientPeer | undefined;

  beforeEach(async () => {
    sim = new RealtimeSimulator({ apiKey: KEY, seed: 7, deltaIntervalMs: 5 });
    await sim.start();
  });
  afterEach(async () => {
    await peer?.close();
    peer = undefined;
    await sim.stop();
  });

  it('answers a raw SDP offer, speaks the protocol on oai-events, sends audio on the track and hears speech', async () => {
    peer = await openClientPeer();
    const res = await postOffer(sim, peer.offerSdp, 'application/sdp');
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/sdp');
    const callId = /\/v1\/realtime\/calls\/([^/]+)$/.exec(res.headers.get('location') ?? '')?.[1];
    expect(callId).toBeDefined();
    await peer.accept(await res.text());
    await peer.waitFor('session.created');

    // The sideband joins the same call with the standard key and gets no session.created.
    const side = new WebSocket(`${sim.baseUrl.replace('http', 'ws')}/realtime?call_id=${callId!}`, { headers: { authorization: `Bearer ${KEY}` } });
    const sideEvents: Array<Record<string, unknown>> = [];
    side.on('message', (d: Buffer) => sideEvents.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((resolve, reject) => {
      side.once('open', resolve);
      side.once('error', reject);
    });

    await peer.speak(700, 700);
    await peer.waitFor('input_audio_buffer.committed');
    const done = await peer.waitFor('response.done', 15_000);
    const usage = (done.response as { usage: { total_tokens: number } }).usage;
    expect(usage.total_tokens).toBeGreaterThan(0);
    await peer.waitFor('output_audio_buffer.stopped', 10_000);
    expect(peer.rtpPacketsIn()).toBeGreaterThan(10);
    expect(peer.events.some((e) => e.type === 'response.output_audio.delta')).toBe(false);
    expect(sideEvents.some((e) => e.type === 'response.done')).toBe(true);
    expect(sideEvents.some((e) => e.type === 'session.created')).toBe(false);

    // Client events on the sideband reach the same session.
    side.send(JSON.stringify({ type: 'session.update', session: { type: 'realtime', instructions: 'from the sideband' } }));
    const updated = await peer.waitFor('session.updated');
    expect((updated.session as { instructions: string }).instructions).toBe('from the sideband');
    side.close();

    const hang = await fetch(`${sim.baseUrl}/realtime/calls/${callId!}/hangup`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } });
    expect(hang.status).toBe(200);
    expect(sim.call(callId!)).toBeUndefined();
    expect(sim.stats.callHangups).toBe(1);
  });

  it('takes multipart sdp + session and applies the session', async () => {
    peer = await openClientPeer();
    const form = new FormData();
    form.set('sdp', peer.offerSdp);
    form.set('session', JSON.stringify({ type: 'realtime', model: 'gpt-realtime', instructions: 'be brief' }));
    const res = await postOffer(sim, form);
    expect(res.status).toBe(201);
    await peer.accept(await res.text());
    const created = await peer.waitFor('session.created');
    expect((created.session as { instructions: string }).instructions).toBe('be brief');
  });

  it('refuses a bad key, a missing sdp, and ephemeral keys on the sideband', async () => {
    expect((await postOffer(sim, 'v=0\r\n', 'application/sdp', 'sk-wrong')).status).toBe(401);
    const form = new FormData();
    form.set('session', '{}');
    expect((await postOffer(sim, form)).status).toBe(400);
    const side = new WebSocket(`${sim.baseUrl.replace('http', 'ws')}/realtime?call_id=rtc_nope`, { headers: { authorization: `Bearer ${KEY}` } });
    const status = await new Promise<number>((resolve) => side.once('unexpected-response', (_q, r) => resolve(r.statusCode ?? 0)));
    expect(status).toBe(404);
  });
});
