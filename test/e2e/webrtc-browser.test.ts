/**
 * Real browser WebRTC through the relay: Debian's Chromium (playwright-core) with a fake
 * microphone playing a spoken WAV (espeak-ng + sox), a call opened with POST /v1/realtime/calls
 * on the relay, the simulator as the WebRTC upstream. Audio both ways (the simulator heard the
 * speech turn; the page received RTP audio), protocol events and the transcript on oai-events,
 * and the ledger row equal to the usage the simulator reported.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { waitForUsage } from './helpers/usage';

jest.setTimeout(60_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

function speechWav(dir: string): string {
  const raw = path.join(dir, 'espeak.wav');
  const file = path.join(dir, 'speech-48k.wav');
  execFileSync('espeak-ng', ['-v', 'en-us', '-s', '165', '-w', raw, 'Hello relay, please tell me about the weather today.'], { stdio: 'pipe' });
  // Speech, then a long silence so the energy VAD sees the turn end (the fake device loops the file).
  execFileSync('sox', [raw, '-r', '48000', '-c', '1', '-b', '16', '-e', 'signed-integer', file, 'gain', '-n', '-3', 'pad', '0.3', '6'], { stdio: 'pipe' });
  return file;
}

interface PageState {
  events: string[];
  transcript: string;
  usage: Array<{ input_token_details: { audio_tokens: number; text_tokens: number }; output_token_details: { audio_tokens: number; text_tokens: number } }>;
  inboundAudioBytes: number;
  status: number;
  location: string | null;
}

describe('browser WebRTC call through the relay (Chromium, fake microphone)', () => {
  let relay: RelayInstance;
  let work: string;
  let context: BrowserContext | undefined;
  let page: Page;

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'relay-webrtc-'));
    const wav = speechWav(work);
    relay = await startRelay({ DRAIN_TIMEOUT_MS: '0' });
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${wav}`,
        // Plain host candidates: werift on the other end needs no mDNS resolution on loopback.
        '--disable-features=WebRtcHideLocalIpsWithMdns',
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    await relay?.close();
    rmSync(work, { recursive: true, force: true });
  });

  it('holds a call: speech in, audio and transcript out, billed exactly', async () => {
    const key = await relay.createKey('webrtc-browser', ['realtime', 'usage']);
    // The demo page: its CSP allows connect-src self (API responses carry default-src none).
    await page.goto(`${relay.baseUrl}/demo`);
    // Browser code as a string: this project's TypeScript has no DOM lib.
    await page.evaluate(`(async (k) => {
      const state = { events: [], transcript: '', usage: [], inboundAudioBytes: 0, status: 0, location: null };
      window.state = state;
      const pc = new RTCPeerConnection();
      const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
      pc.addTrack(mic.getAudioTracks()[0], mic);
      pc.ontrack = (e) => {
        const el = document.createElement('audio');
        el.srcObject = e.streams[0] || new MediaStream([e.track]);
        el.muted = true;
        el.play().catch(() => {});
      };
      const dc = pc.createDataChannel('oai-events');
      dc.onmessage = (m) => {
        const ev = JSON.parse(String(m.data));
        state.events.push(ev.type);
        if (ev.type === 'response.output_audio_transcript.delta') state.transcript += ev.delta || '';
        if (ev.type === 'response.done' && ev.response && ev.response.usage) state.usage.push(ev.response.usage);
      };
      await pc.setLocalDescription(await pc.createOffer());
      await new Promise((resolve) => {
        if (pc.iceGatheringState === 'complete') resolve();
        pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
        setTimeout(resolve, 2000);
      });
      const res = await fetch('/v1/realtime/calls?model=gpt-realtime', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + k, 'content-type': 'application/sdp' },
        body: pc.localDescription.sdp,
      });
      state.status = res.status;
      state.location = res.headers.get('location');
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      setInterval(() => {
        pc.getStats().then((stats) => stats.forEach((s) => {
          if (s.type === 'inbound-rtp' && s.kind === 'audio') state.inboundAudioBytes = s.bytesReceived || 0;
        }));
      }, 250);
    })(${JSON.stringify(key)})`);

    const read = (): Promise<PageState> => page.evaluate('window.state') as Promise<PageState>;
    const deadline = Date.now() + 40_000;
    let state = await read();
    while (!(state.events.includes('response.done') && state.inboundAudioBytes > 2000)) {
      if (Date.now() > deadline) throw new Error(`call did not complete: ${JSON.stringify(state)}`);
      await new Promise((r) => setTimeout(r, 250));
      state = await read();
    }
    expect(state.status).toBe(201);
    expect(state.location).toMatch(/^\/v1\/realtime\/calls\/rtc_/);
    expect(state.events).toEqual(expect.arrayContaining(['session.created', 'input_audio_buffer.speech_started', 'input_audio_buffer.committed', 'response.created']));
    expect(state.transcript.length).toBeGreaterThan(5);
    const sim = relay.relay.services.simulator!;
    expect(sim.stats.callsCreated).toBe(1);

    const first = state.usage[0]!;
    const report = await waitForUsage(relay, key, (r) => r.total.responses >= state.usage.length);
    const sum = (f: (u: PageState['usage'][number]) => number): number => state.usage.reduce((a, u) => a + f(u), 0);
    expect(first.input_token_details.audio_tokens).toBeGreaterThan(0);
    expect(report.total.estimated_responses).toBe(0);
    expect(report.total.input_audio_tokens).toBe(sum((u) => u.input_token_details.audio_tokens));
    expect(report.total.output_audio_tokens).toBe(sum((u) => u.output_token_details.audio_tokens));
    expect(report.total.output_text_tokens).toBe(sum((u) => u.output_token_details.text_tokens));

    const callId = state.location!.split('/').pop()!;
    const hang = await relay.request('POST', `/v1/realtime/calls/${callId}/hangup`, { headers: { authorization: `Bearer ${key}` } });
    expect(hang.status).toBe(200);
  });
});
