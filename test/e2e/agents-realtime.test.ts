/**
 * `@openai/agents-realtime` (RealtimeSession over the OpenAIRealtimeWebSocket transport) against
 * the relay, with the transport's `url` option as the only change. The transport dials that URL
 * as given (ws: or wss:), so this suite uses plain ws; the server-side mint uses the official
 * `openai` SDK with its baseURL pointed at the relay.
 */
import { OpenAIRealtimeWebSocket, RealtimeAgent, RealtimeSession, tool, type TransportEvent } from '@openai/agents-realtime';
import OpenAI from 'openai';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { chunks, rms, voiceLikePcm16 } from './helpers/audio';
import { usageOf, waitForUsage, type ResponseUsageLike } from './helpers/usage';

jest.setTimeout(40_000);

const MODEL = 'gpt-realtime';
const USER = 'bob-agents';

interface ResponseDone {
  type: 'response.done';
  response: { status: string; usage?: ResponseUsageLike | null };
}

function isResponseDone(e: TransportEvent): e is TransportEvent & ResponseDone {
  return e.type === 'response.done';
}

async function until(cond: () => boolean, what: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('@openai/agents-realtime RealtimeSession through the relay (ephemeral key)', () => {
  let relay: RelayInstance;
  let userKey: string;

  beforeAll(async () => {
    relay = await startRelay();
    userKey = await relay.createKey(USER, ['mint', 'usage']);
  });

  afterAll(async () => {
    await relay?.close();
  });

  it('talks, calls a tool, hears the answer, and the usage is billed', async () => {
    // Server side: the official SDK mints through the relay; only baseURL differs from OpenAI.
    const server = new OpenAI({ apiKey: userKey, baseURL: `${relay.baseUrl}/v1` });
    const secret = await server.realtime.clientSecrets.create({
      expires_after: { anchor: 'created_at', seconds: 120 },
      session: { type: 'realtime', model: MODEL },
    });
    expect(secret.value).toMatch(/^ek_/);

    const toolCalls: string[] = [];
    const weather = tool({
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string' } },
        required: ['city'],
        additionalProperties: false,
      },
      strict: true,
      execute: async (input) => {
        toolCalls.push(JSON.stringify(input));
        return JSON.stringify({ sky: 'clear', celsius: 21 });
      },
    });
    const agent = new RealtimeAgent({ name: 'Assistant', instructions: 'Be brief.', tools: [weather] });
    const session = new RealtimeSession(agent, {
      transport: new OpenAIRealtimeWebSocket({ url: `${relay.wsUrl}?model=${MODEL}` }),
      model: MODEL,
      config: {
        // The SDK's default semantic_vad leaves create_response unset; ask for auto-responses on commit.
        audio: { input: { turnDetection: { type: 'semantic_vad', createResponse: true } } },
      },
    });

    const events: TransportEvent[] = [];
    const errors: unknown[] = [];
    const audio: Buffer[] = [];
    session.on('transport_event', (e) => events.push(e));
    session.on('error', (e) => errors.push(e.error));
    session.on('audio', (a) => audio.push(Buffer.from(a.data)));
    const done = (): ResponseDone[] => events.filter(isResponseDone);
    const types = (): string => events.map((e) => e.type).join(', ');

    await session.connect({ apiKey: secret.value });
    await until(() => events.some((e) => e.type === 'session.updated'), types);

    // Turn 1: microphone-style audio; the commit makes the (simulated) server answer by itself.
    const pieces = chunks(voiceLikePcm16(1200), 100);
    pieces.forEach((c, i) => {
      const copy = new Uint8Array(c).buffer;
      session.sendAudio(copy, { commit: i === pieces.length - 1 });
    });
    await until(() => done().length >= 1, types);
    const firstAudio = Buffer.concat(audio);
    expect(firstAudio.length).toBeGreaterThan(24000 * 2 * 0.3);
    expect(rms(firstAudio)).toBeGreaterThan(0.01);
    expect(events.some((e) => e.type === 'conversation.item.input_audio_transcription.completed')).toBe(true);
    const transcripts = events.filter((e) => e.type === 'response.output_audio_transcript.done').map((e): unknown => (e as { transcript?: unknown }).transcript);
    expect(transcripts).toEqual([expect.stringMatching(/\w+/)]);

    // Turn 2: naming the tool makes the model call it; the SDK runs it and sends the output back.
    session.sendMessage('What does get_weather say for Paris?');
    await until(() => done().length >= 3, types);
    expect(toolCalls).toHaveLength(1);
    expect(events.some((e) => e.type === 'response.function_call_arguments.done' && e.name === 'get_weather')).toBe(true);
    const sentOutput = session.history.some((item) => item.type === 'function_call' && item.status === 'completed' && typeof item.output === 'string' && item.output.includes('clear'));
    expect(sentOutput).toBe(true);
    expect(done().every((d) => d.response.status === 'completed')).toBe(true);

    session.close();
    expect(errors).toEqual([]);

    const sent = usageOf(done().map((d) => d.response.usage ?? {}));
    const report = await waitForUsage(relay, userKey, (r) => r.data.some((row) => row.key === MODEL && row.responses === 3));
    const row = report.data.find((r) => r.key === MODEL);
    expect(row).toMatchObject({ responses: 3, estimated_responses: 0, input_audio_tokens: sent.inputAudio, output_audio_tokens: sent.outputAudio });
    expect(Number(row?.cost_usd)).toBeGreaterThan(0);
  });
});
