/**
 * The official `openai` package's Realtime WebSocket client (openai/realtime/ws), unchanged but
 * for its baseURL, against a relay that terminates TLS itself: that client always dials `wss:`,
 * whatever scheme its baseURL has. Trust in the test's self-signed certificate goes in through
 * the client's own `options` (handed to `ws`, hence to tls.connect) as `ca`, so nothing global
 * (NODE_EXTRA_CA_CERTS, https.globalAgent) is touched.
 */
import { once } from 'node:events';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import type { RealtimeServerEvent } from 'openai/resources/realtime/realtime';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { chunks, rms, voiceLikePcm16 } from './helpers/audio';
import { selfSignedCert, type SelfSignedCert } from './helpers/tls';
import { usageOf, waitForUsage, type UsageReport } from './helpers/usage';

jest.setTimeout(40_000);

const MODEL = 'gpt-realtime';
const TOOL = {
  type: 'function' as const,
  name: 'get_weather',
  description: 'Current weather for a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

type Ev<T extends RealtimeServerEvent['type']> = Extract<RealtimeServerEvent, { type: T }>;

describe('openai npm OpenAIRealtimeWS through the relay (wss, ephemeral key)', () => {
  let cert: SelfSignedCert;
  let relay: RelayInstance;
  let userKey: string;

  beforeAll(async () => {
    cert = selfSignedCert();
    relay = await startRelay({ TLS_CERT_FILE: cert.certFile, TLS_KEY_FILE: cert.keyFile });
    userKey = await relay.createKey('alice-openai', ['mint', 'usage']);
  });

  afterAll(async () => {
    await relay?.close();
    cert?.cleanup();
  });

  it('runs audio in, audio + transcript out and a function call, then bills it', async () => {
    expect(relay.baseUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    // The server side of an app: a relay key with the mint scope buys a short-lived key for the client.
    const minted = await relay.request<{ value: string; session: { model: string } }>('POST', '/v1/realtime/client_secrets', {
      headers: { authorization: `Bearer ${userKey}` },
      body: { expires_after: { anchor: 'created_at', seconds: 120 }, session: { type: 'realtime', model: MODEL } },
    });
    expect(minted.status).toBe(200);
    const ephemeralKey = minted.body.value;
    expect(ephemeralKey).toMatch(/^ek_/);

    // The only relay-specific settings: baseURL, and trust for the test's self-signed certificate.
    const client = new OpenAI({ apiKey: ephemeralKey, baseURL: `${relay.baseUrl}/v1` });
    const rt = new OpenAIRealtimeWS({ model: MODEL, options: { ca: cert.certPem } }, client);
    expect(rt.url.toString()).toBe(`${relay.wsUrl.replace(/^ws:/, 'wss:')}?model=${MODEL}`);

    const events: RealtimeServerEvent[] = [];
    const errors: unknown[] = [];
    let notify: (() => void) | null = null;
    rt.on('event', (e) => {
      events.push(e);
      notify?.();
    });
    rt.on('error', (err) => errors.push(err));
    const waitFor = async <T extends RealtimeServerEvent['type']>(type: T, from: number, timeoutMs = 10_000): Promise<Ev<T>> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = events.slice(from).find((e): e is Ev<T> => e.type === type);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no ${type}; got ${events.map((e) => e.type).join(', ')}; errors ${JSON.stringify(errors)}`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 100);
        });
      }
    };

    await once(rt.socket, 'open');
    await waitFor('session.created', 0);
    let mark = events.length;
    rt.send({
      type: 'session.update',
      session: {
        type: 'realtime',
        output_modalities: ['audio'],
        audio: {
          input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: { model: 'gpt-4o-mini-transcribe' }, turn_detection: null },
          output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' },
        },
        tools: [TOOL],
      },
    });
    await waitFor('session.updated', mark);

    // Turn 1: microphone-style audio, 100 ms appends, then commit and ask for a response.
    mark = events.length;
    for (const c of chunks(voiceLikePcm16(1200), 100)) rt.send({ type: 'input_audio_buffer.append', audio: c.toString('base64') });
    rt.send({ type: 'input_audio_buffer.commit' });
    rt.send({ type: 'response.create' });
    const firstDone = await waitFor('response.done', mark);
    const turn1 = events.slice(mark);
    const audio = Buffer.concat(turn1.filter((e): e is Ev<'response.output_audio.delta'> => e.type === 'response.output_audio.delta').map((e) => Buffer.from(e.delta, 'base64')));
    expect(audio.length).toBeGreaterThan(24000 * 2 * 0.3);
    expect(rms(audio)).toBeGreaterThan(0.01);
    const transcript = turn1.find((e): e is Ev<'response.output_audio_transcript.done'> => e.type === 'response.output_audio_transcript.done');
    expect(transcript?.transcript.length).toBeGreaterThan(0);
    const heard = turn1.find((e): e is Ev<'conversation.item.input_audio_transcription.completed'> => e.type === 'conversation.item.input_audio_transcription.completed');
    expect(heard?.transcript).toMatch(/transcript/i);
    expect(firstDone.response.status).toBe('completed');

    // Turn 2: the user names the tool, the model calls it, the client answers with the output.
    mark = events.length;
    rt.send({
      type: 'conversation.item.create',
      item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Use get_weather for Paris, please.' }] },
    });
    rt.send({ type: 'response.create' });
    const call = await waitFor('response.function_call_arguments.done', mark);
    expect(call.name).toBe('get_weather');
    expect(JSON.parse(call.arguments)).toEqual({ city: 'sample' });
    await waitFor('response.done', mark);
    mark = events.length;
    rt.send({
      type: 'conversation.item.create',
      item: { type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ city: 'Paris', sky: 'clear', celsius: 21 }) },
    });
    rt.send({ type: 'response.create' });
    const lastDone = await waitFor('response.done', mark);
    expect(lastDone.response.status).toBe('completed');
    expect(events.slice(mark).some((e) => e.type === 'response.output_audio.delta')).toBe(true);

    rt.close();
    await once(rt.socket, 'close');
    expect(errors).toEqual([]);

    // Every response.done reached the ledger, for the key's user, at a cost.
    const dones = events.filter((e): e is Ev<'response.done'> => e.type === 'response.done');
    expect(dones).toHaveLength(3);
    const report: UsageReport = await waitForUsage(relay, userKey, (r) => r.data.some((row) => row.key === MODEL && row.responses === 3));
    const byModel = report.data.find((row) => row.key === MODEL);
    const sent = usageOf(dones.map((d) => d.response.usage ?? {}));
    expect(byModel).toMatchObject({
      responses: 3,
      estimated_responses: 0,
      input_audio_tokens: sent.inputAudio,
      output_audio_tokens: sent.outputAudio,
      output_text_tokens: sent.outputText,
    });
    expect(Number(byModel?.cost_usd)).toBeGreaterThan(0);
    expect(Number(report.total.cost_usd)).toBeGreaterThanOrEqual(Number(byModel?.cost_usd));
    const rows = await relay.relay.services.metering.ledger.usage({ user: 'alice-openai' }, 'model');
    expect(rows.find((r) => r.key === MODEL)?.responses).toBe(3);
  });

  it('is refused by the client when the certificate is not trusted (TLS really is in the path)', async () => {
    const minted = await relay.request<{ value: string }>('POST', '/v1/realtime/client_secrets', {
      headers: { authorization: `Bearer ${userKey}` },
      body: { session: { type: 'realtime', model: MODEL } },
    });
    const rt = new OpenAIRealtimeWS({ model: MODEL }, new OpenAI({ apiKey: minted.body.value, baseURL: `${relay.baseUrl}/v1` }));
    const err = await new Promise<Error>((resolve) => rt.on('error', resolve));
    expect(`${err.message} ${String(err.cause)}`).toMatch(/self[- ]signed/i);
  }, 10_000);
});
