import { readFileSync } from 'node:fs';
import path from 'node:path';
import { costOf } from '../../src/metering/cost';
import { RealtimeSimulator } from '../../src/simulator';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { TestClient } from '../support/ws-client';
import { until } from '../support/until';

/** A beta-era app's own frames, byte for byte (event_id before type, as openai-realtime-api-beta wrote them). */
const BETA_FRAMES = readFileSync(path.join(__dirname, 'fixtures', 'beta-conversation.jsonl'), 'utf8').split('\n').filter((l) => l !== '');

const GA_ONLY_TYPES = ['response.output_audio.delta', 'response.output_audio.done', 'response.output_audio_transcript.delta', 'response.output_text.delta', 'conversation.item.added', 'conversation.item.done'];
const BETA_ONLY_TYPES = ['response.audio.delta', 'response.audio.done', 'response.audio_transcript.delta', 'response.text.delta', 'conversation.created'];

type Json = Record<string, unknown>;

describe('beta <-> GA dialect translation through the relay', () => {
  let r: RelayInstance | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it('a recorded beta conversation against a GA-only upstream: beta names and shapes back, audio spliced, usage billed exactly', async () => {
    r = await startRelay({ UPSTREAM_DIALECTS: 'ga' });
    const sim = r.relay.services.simulator!;
    sim.recordServerEvents();
    const key = await r.createKey('bea', ['realtime', 'usage']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}`, 'OpenAI-Beta': 'realtime=v1' } });
    const created = (await c.waitFor('session.created')) as { session: Json };
    // The session object in beta shape: flat audio settings, string formats, no GA type.
    expect(created.session).toMatchObject({ modalities: ['text', 'audio'], voice: 'alloy', input_audio_format: 'pcm16', output_audio_format: 'pcm16' });
    expect(created.session.audio).toBeUndefined();
    expect(created.session.type).toBeUndefined();

    for (const f of BETA_FRAMES.slice(0, 13)) c.ws.send(f);
    const first = (await c.waitFor('response.done')) as { response: Json & { id: string } };
    expect(first.response.modalities).toEqual(['text', 'audio']);
    for (const f of BETA_FRAMES.slice(13)) c.ws.send(f);
    await c.waitFor((e) => e.type === 'response.done' && (e.response as { id: string }).id !== first.response.id);

    // The upstream never heard the beta dialect: it is GA only and refuses beta outright.
    expect(sim.connections()[0]?.dialect ?? 'ga').toBe('ga');
    const upstreamGot = sim.stats.receivedClientEvents.map((e) => e.raw);
    expect(upstreamGot).toHaveLength(BETA_FRAMES.length);
    // Audio appends (and every event the dialects share) arrive as the bytes the app sent.
    BETA_FRAMES.forEach((f, i) => {
      if (f.includes('"input_audio_buffer.')) expect(upstreamGot[i]).toBe(f);
    });
    const update = JSON.parse(upstreamGot[0]) as { event_id: string; session: Json };
    expect(update.event_id).toBe('evt_beta_001');
    expect(update.session).toMatchObject({
      type: 'realtime',
      output_modalities: ['audio'],
      instructions: 'You are a helpful assistant for a travel app. Answer briefly.',
      max_output_tokens: 'inf',
      audio: { input: { format: { type: 'audio/pcm', rate: 24000 }, transcription: null, turn_detection: null }, output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy' } },
    });
    expect(update.session).not.toHaveProperty('temperature');
    expect(update.session).not.toHaveProperty('voice');
    expect(JSON.parse(upstreamGot[12])).toMatchObject({ type: 'response.create', response: { output_modalities: ['audio'], audio: { output: { voice: 'alloy', format: { type: 'audio/pcm', rate: 24000 } } } } });
    expect(JSON.parse(upstreamGot[13])).toMatchObject({ item: { role: 'assistant', content: [{ type: 'output_text', text: 'Earlier I said Lisbon is sunny.' }] } });
    expect(JSON.parse(upstreamGot[15])).toMatchObject({ response: { output_modalities: ['text'], max_output_tokens: 200 } });

    // The client saw beta event names throughout, never a GA one, and no error.
    const types = c.types();
    for (const t of GA_ONLY_TYPES) expect(types).not.toContain(t);
    expect(types).toContain('response.audio.delta');
    expect(types).toContain('response.audio_transcript.delta');
    expect(types).toContain('response.text.delta');
    expect(types).toContain('conversation.item.created');
    expect(types).not.toContain('error');
    // Assistant items carry beta content-part types.
    const doneItems = c.events.filter((e) => e.type === 'response.output_item.done').map((e) => (e.item as { content: Array<{ type: string }> }).content[0].type);
    expect(doneItems).toEqual(['audio', 'text']);

    // Audio deltas: the upstream's frames, byte for byte, but for the type string.
    const sent = sim.sentServerEvents!.filter((e) => e.type === 'response.output_audio.delta').map((e) => e.raw);
    const got = c.raw.filter((f) => f.includes('"response.audio.delta"'));
    expect(sent.length).toBeGreaterThan(0);
    expect(got).toEqual(sent.map((f) => f.replace('"type":"response.output_audio.delta"', '"type":"response.audio.delta"')));

    c.close();
    await c.closed;
    // Usage: every response billed once, exactly as the upstream reported it.
    const ledger = r.relay.services.metering.ledger;
    const [totals] = await until(() => ledger.usage({ user: 'bea' }), (rows) => rows[0]?.responses === 2);
    const u = sim.stats.usageTotals;
    expect(totals).toMatchObject({
      responses: 2,
      estimated_responses: 0,
      input_text_tokens: u.input_text_tokens,
      input_audio_tokens: u.input_audio_tokens,
      cached_text_tokens: u.cached_text_tokens,
      cached_audio_tokens: u.cached_audio_tokens,
      output_text_tokens: u.output_text_tokens,
      output_audio_tokens: u.output_audio_tokens,
    });
    const price = r.relay.services.metering.prices.priceFor('simulator', 'gpt-realtime', new Date())!;
    const usage = { input_text: u.input_text_tokens, input_audio: u.input_audio_tokens, input_image: 0, cached_text: u.cached_text_tokens, cached_audio: u.cached_audio_tokens, cached_image: 0, output_text: u.output_text_tokens, output_audio: u.output_audio_tokens, output_reasoning: 0, duration_ms: 0 };
    expect(totals.cost_nanos).toBe(costOf(usage, price).nanos);
  });

  it('a GA client against a beta-only upstream (CometAPI): GA names and shapes back; GA-only features refused by name, session goes on', async () => {
    r = await startRelay({ UPSTREAM_DIALECTS: 'beta' });
    const sim = r.relay.services.simulator!;
    const key = await r.createKey('gus', ['realtime', 'usage']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-4o-realtime-preview-2025-06-03`, { headers: { authorization: `Bearer ${key}` } });
    const created = (await c.waitFor('session.created')) as { session: Json };
    expect(created.session).toMatchObject({ type: 'realtime', output_modalities: ['audio'], audio: { input: { format: { type: 'audio/pcm', rate: 24000 } }, output: { voice: 'alloy' } } });
    expect(created.session.modalities).toBeUndefined();
    expect(sim.connections()[0].dialect).toBe('beta');
    expect(sim.connections()[0].headers['openai-beta']).toBe('realtime=v1');

    // A GA-only session type cannot be expressed in beta: refused by name, not forwarded.
    c.send({ type: 'session.update', event_id: 'evt_t', session: { type: 'transcription' } });
    const refused = (await c.waitFor('error')) as { error: Json };
    expect(refused.error).toMatchObject({ code: 'dialect_untranslatable', param: 'session.type', event_id: 'evt_t' });
    c.send({ type: 'session.update', event_id: 'evt_m', session: { type: 'realtime', tools: [{ type: 'mcp', server_label: 'x', server_url: 'https://mcp.example' }] } });
    const mcp = (await c.waitFor((e) => e.type === 'error' && (e.error as Json).event_id === 'evt_m')) as { error: Json };
    expect(mcp.error).toMatchObject({ code: 'dialect_untranslatable', param: 'session.tools[0].type' });

    c.send({ type: 'session.update', session: { type: 'realtime', output_modalities: ['audio'], audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: null }, output: { voice: 'verse', format: { type: 'audio/pcmu' } } } } });
    const updated = (await c.waitFor('session.updated')) as { session: Json };
    expect(updated.session).toMatchObject({ audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: null }, output: { voice: 'verse', format: { type: 'audio/pcmu' } } } });
    c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(8000, 0x7f).toString('base64') });
    c.send({ type: 'input_audio_buffer.commit' });
    c.send({ type: 'response.create', response: { output_modalities: ['audio'] } });
    const done = (await c.waitFor('response.done')) as { response: Json & { id: string } };
    expect(done.response.output_modalities).toEqual(['audio']);
    const types = c.types();
    for (const t of BETA_ONLY_TYPES) expect(types).not.toContain(t);
    expect(types).toContain('response.output_audio.delta');
    expect(types).toContain('conversation.item.added');
    expect(types).toContain('conversation.item.done');
    // The upstream got beta shapes only.
    const upstreamUpdate = sim.stats.receivedClientEvents.map((e) => JSON.parse(e.raw) as Json).find((e) => e.type === 'session.update')!;
    expect(upstreamUpdate.session).toEqual({ modalities: ['text', 'audio'], input_audio_format: 'g711_ulaw', turn_detection: null, voice: 'verse', output_audio_format: 'g711_ulaw' });
    c.close();
    await c.closed;
    const ledger = r.relay.services.metering.ledger;
    const row = await until(() => ledger.find('simulator', done.response.id), (x) => x !== null);
    expect(row!.estimated).toBe(false);
    expect(row!.usage.output_audio).toBe(sim.stats.usageTotals.output_audio_tokens);
  });

  it('a beta client of the GA-only simulator directly is refused as OpenAI refuses it; through the relay it is served', async () => {
    const openai = new RealtimeSimulator({ dialects: ['ga'] });
    await openai.start();
    try {
      const direct = await TestClient.connect(`${openai.baseUrl.replace(/^http/, 'ws')}/realtime?model=gpt-realtime`, { headers: { 'OpenAI-Beta': 'realtime=v1' } });
      const err = (await direct.waitFor('error')) as { error: Json };
      expect(err.error).toMatchObject({ type: 'invalid_request_error', code: 'beta_api_shape_disabled' });
      expect(await direct.closed).toMatchObject({ code: 4000, reason: 'invalid_request_error.beta_api_shape_disabled' });
      const viaSubprotocol = await TestClient.connect(`${openai.baseUrl.replace(/^http/, 'ws')}/realtime?model=gpt-realtime`, { protocols: ['realtime', 'openai-beta.realtime-v1'] });
      expect((await viaSubprotocol.closed).code).toBe(4000);
      const mint = await fetch(`${openai.baseUrl}/realtime/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4o-realtime-preview-2025-06-03' }) });
      expect(mint.status).toBe(400);
      expect(await mint.json()).toMatchObject({ error: { code: 'beta_api_shape_disabled', type: 'invalid_request_error' } });
      expect(openai.stats.connectionsOpened).toBe(0);
    } finally {
      await openai.stop();
    }
    r = await startRelay({ UPSTREAM_DIALECTS: 'ga' });
    const sim = r.relay.services.simulator!;
    // A browser's beta subprotocol through the relay: translated, never refused.
    const key = await r.createKey('bob', ['realtime']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` }, protocols: ['realtime', 'openai-beta.realtime-v1'] });
    const created = (await c.waitFor('session.created')) as { session: Json };
    expect(created.session.modalities).toEqual(['text', 'audio']);
    expect(Object.keys(sim.connections()[0].headers)).not.toContain('openai-beta');
    c.close();
    await c.closed;
  });
});
