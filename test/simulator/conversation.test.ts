import { RealtimeSimulator, type RealtimeUsage } from '../../src/simulator';
import {
  TestClient, b64bytes, checkUsage, eventually, pcm16, wsUrl,
  type DeltaEvent, type ErrorEvent, type ResponseEvent, type ServerEvent, type SessionEvent,
} from './helpers';

let sim: RealtimeSimulator;
beforeEach(async () => {
  sim = new RealtimeSimulator({ seed: 7 });
  await sim.start();
});
afterEach(() => sim.stop());

const tok = (s: string): number => (s.length === 0 ? 0 : Math.max(1, Math.ceil(s.length / 4)));
const TOOLS = [{ type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } }];

/** Collapses runs of delta events so sequences can be compared exactly. */
function shape(events: ServerEvent[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    const t = e.type.endsWith('.delta') ? `${e.type}*` : e.type;
    if (t.endsWith('*') && out.includes(t)) continue;
    out.push(t);
  }
  return out;
}

function audioMsOf(events: ServerEvent[], type: string): number {
  return events.filter((e) => e.type === type).reduce((n, e) => n + b64bytes((e as DeltaEvent).delta), 0) / 48;
}

function textOf(events: ServerEvent[], type: string): string {
  return events.filter((e) => e.type === type).map((e) => (e as DeltaEvent).delta).join('');
}

describe('beta dialect conversation', () => {
  it('runs session.update, audio turn, text turn with consistent usage', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-4o-realtime-preview-2025-06-03'), {
      headers: { 'OpenAI-Beta': 'realtime=v1', 'X-Client-Request-Id': 'client-A' },
    });
    await c.waitFor('session.created');
    await c.waitFor('conversation.created');

    c.send({ type: 'session.update', session: { instructions: 'Be brief.', voice: 'verse', tools: TOOLS, input_audio_transcription: { model: 'whisper-1' } } });
    const updated = await c.waitFor<SessionEvent>('session.updated');
    expect(updated.session).toMatchObject({ instructions: 'Be brief.', voice: 'verse', tools: TOOLS, input_audio_transcription: { model: 'whisper-1' } });
    expect(updated.session.turn_detection).toMatchObject({ type: 'server_vad', create_response: true });

    for (let i = 0; i < 4; i++) c.send({ type: 'input_audio_buffer.append', audio: pcm16(250) });
    const started = await c.waitFor('input_audio_buffer.speech_started');
    expect(started.audio_start_ms).toBe(0);
    c.send({ type: 'input_audio_buffer.commit' });
    const stopped = await c.waitFor('input_audio_buffer.speech_stopped');
    expect(stopped).toMatchObject({ audio_end_ms: 1000, item_id: started.item_id });
    const committed = await c.waitFor('input_audio_buffer.committed');
    expect(committed).toMatchObject({ item_id: started.item_id, previous_item_id: null });
    const userItem = await c.waitFor('conversation.item.created');
    expect(userItem.item).toMatchObject({ id: started.item_id, role: 'user', content: [{ type: 'input_audio' }] });
    const tr = await c.waitFor('conversation.item.input_audio_transcription.completed');
    expect(tr).toMatchObject({ item_id: started.item_id, content_index: 0, usage: { type: 'duration', seconds: 1 } });
    // Only one speech_started for the whole utterance, and no auto response without an explicit create_response.
    expect(c.events.filter((e) => e.type === 'input_audio_buffer.speech_started')).toHaveLength(1);
    expect(await c.quiet(60)).toEqual([]);

    c.send({ type: 'response.create' });
    const turn1 = await c.until('response.done');
    expect(shape(turn1)).toEqual([
      'response.created',
      'response.output_item.added',
      'conversation.item.created',
      'response.content_part.added',
      'response.audio_transcript.delta*',
      'response.audio.delta*',
      'response.audio.done',
      'response.audio_transcript.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.done',
    ]);
    const ids = new Set(c.events.map((e) => e.event_id));
    expect(ids.size).toBe(c.events.length);
    const done1 = turn1[turn1.length - 1] as ResponseEvent;
    expect(done1.response.id).toMatch(/^resp_/);
    expect(done1.response.status).toBe('completed');
    expect(done1.response.modalities).toEqual(['text', 'audio']);
    expect(done1.response.voice).toBe('verse');
    const transcript = textOf(turn1, 'response.audio_transcript.delta');
    expect(turn1.find((e) => e.type === 'response.audio_transcript.done')?.transcript).toBe(transcript);
    expect(done1.response.output[0]).toMatchObject({ type: 'message', status: 'completed', content: [{ type: 'audio', transcript }] });
    const outMs1 = audioMsOf(turn1, 'response.audio.delta');
    expect(outMs1).toBeGreaterThanOrEqual(500);
    expect(outMs1).toBeLessThanOrEqual(1500);
    expect(outMs1 % 100).toBe(0);
    const u1 = done1.response.usage!;
    checkUsage(u1);
    const instr = tok('Be brief.') + tok(JSON.stringify(TOOLS));
    expect(u1.input_token_details).toMatchObject({ text_tokens: instr, audio_tokens: 10, image_tokens: 0, cached_tokens: 0 });
    expect(u1.output_token_details).toEqual({ text_tokens: tok(transcript), audio_tokens: outMs1 / 50 });
    const rl1 = await c.waitFor('rate_limits.updated');

    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Tell me more' }] } });
    const textItem = await c.waitFor('conversation.item.created');
    expect(textItem.previous_item_id).toBe(done1.response.output[0]!.id);
    c.send({ type: 'response.create' });
    const turn2 = await c.until('response.done');
    const u2 = (turn2[turn2.length - 1] as ResponseEvent).response.usage!;
    checkUsage(u2);
    // The whole conversation is re-billed: user audio, the assistant's audio, and the new text.
    expect(u2.input_token_details.text_tokens).toBe(instr + tok('Tell me more'));
    expect(u2.input_token_details.audio_tokens).toBe(10 + outMs1 / 50);
    const cached = u2.input_token_details.cached_tokens_details;
    expect(cached.text_tokens).toBeGreaterThanOrEqual(Math.floor(instr * 0.5));
    expect(cached.text_tokens).toBeLessThanOrEqual(instr);
    expect(cached.audio_tokens).toBeGreaterThanOrEqual(5);
    expect(cached.audio_tokens).toBeLessThanOrEqual(10);
    const rl2 = await c.waitFor('rate_limits.updated');
    const remaining = (e: ServerEvent, name: string): number =>
      (e.rate_limits as Array<{ name: string; remaining: number }>).find((r) => r.name === name)!.remaining;
    expect(remaining(rl2, 'requests')).toBe(remaining(rl1, 'requests') - 1);
    expect(remaining(rl2, 'tokens')).toBe(remaining(rl1, 'tokens') - u2.total_tokens);

    const sum = (k: (u: RealtimeUsage) => number): number => k(u1) + k(u2);
    const expected = {
      input_tokens: sum((u) => u.input_tokens),
      output_tokens: sum((u) => u.output_tokens),
      total_tokens: sum((u) => u.total_tokens),
      input_text_tokens: sum((u) => u.input_token_details.text_tokens),
      input_audio_tokens: sum((u) => u.input_token_details.audio_tokens),
      input_image_tokens: 0,
      cached_tokens: sum((u) => u.input_token_details.cached_tokens),
      cached_text_tokens: sum((u) => u.input_token_details.cached_tokens_details.text_tokens),
      cached_audio_tokens: sum((u) => u.input_token_details.cached_tokens_details.audio_tokens),
      cached_image_tokens: 0,
      output_text_tokens: sum((u) => u.output_token_details.text_tokens),
      output_audio_tokens: sum((u) => u.output_token_details.audio_tokens),
      responses: 2,
    };
    expect(sim.stats.usageTotals).toEqual(expected);
    expect(sim.stats.usageByClientRequestId.get('client-A')).toEqual(expected);
    expect(sim.stats).toMatchObject({ responses: 2, responseDoneSent: 2, cancelled: 0, connectionsOpened: 1 });
    await c.close();
  });

  it('supports truncate, retrieve and delete, and truncation lowers later input', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-4o-realtime-preview-2024-12-17'), { headers: { 'OpenAI-Beta': 'realtime=v1' } });
    c.send({ type: 'conversation.item.create', item: { id: 'item_user1', type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] } });
    await c.waitFor((e) => e.type === 'conversation.item.created' && (e.item as { id: string }).id === 'item_user1');
    c.send({ type: 'response.create' });
    const done = (await c.waitFor<ResponseEvent>('response.done')).response;
    const assistantId = done.output[0]!.id;
    c.send({ type: 'conversation.item.truncate', item_id: assistantId, content_index: 0, audio_end_ms: 200 });
    expect(await c.waitFor('conversation.item.truncated')).toMatchObject({ item_id: assistantId, content_index: 0, audio_end_ms: 200 });
    c.send({ type: 'conversation.item.truncate', item_id: assistantId, content_index: 0, audio_end_ms: 60_000, event_id: 'evt_t' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ code: 'invalid_value', event_id: 'evt_t' });
    c.send({ type: 'conversation.item.retrieve', item_id: 'item_user1' });
    expect((await c.waitFor('conversation.item.retrieved')).item).toMatchObject({ id: 'item_user1', role: 'user' });
    c.send({ type: 'conversation.item.delete', item_id: 'item_user1' });
    expect(await c.waitFor('conversation.item.deleted')).toMatchObject({ item_id: 'item_user1' });
    c.send({ type: 'conversation.item.delete', item_id: 'item_user1', event_id: 'evt_d' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ type: 'invalid_request_error', event_id: 'evt_d' });
    c.send({ type: 'response.create' });
    const u = (await c.waitFor<ResponseEvent>('response.done')).response.usage!;
    // Only the heard 200 ms of assistant audio remains in context, and the user text is gone.
    expect(u.input_token_details.audio_tokens).toBe(4);
    expect(u.input_token_details.text_tokens).toBe(sessionInstructionTokens(c));
    await c.close();
  });
});

/** Tokens of the default instructions, read from the session.created the client received. */
function sessionInstructionTokens(c: TestClient): number {
  const created = c.events.find((e) => e.type === 'session.created') as SessionEvent;
  return tok(String(created.session.instructions));
}

describe('GA dialect conversation', () => {
  it('uses GA event names and session shape', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    await c.waitFor('session.created');
    c.send({
      type: 'session.update',
      session: { type: 'realtime', instructions: 'Speak slowly.', audio: { output: { voice: 'marin' }, input: { transcription: { model: 'gpt-4o-transcribe' } } } },
    });
    const updated = await c.waitFor<SessionEvent>('session.updated');
    expect(updated.session).toMatchObject({
      type: 'realtime',
      instructions: 'Speak slowly.',
      audio: {
        output: { voice: 'marin', format: { type: 'audio/pcm', rate: 24000 } },
        input: { transcription: { model: 'gpt-4o-transcribe' }, turn_detection: { type: 'server_vad' } },
      },
    });

    c.send({ type: 'input_audio_buffer.append', audio: pcm16(1500) });
    c.send({ type: 'input_audio_buffer.commit' });
    const afterCommit = await c.until('conversation.item.input_audio_transcription.completed');
    expect(afterCommit.map((e) => e.type)).toEqual([
      'input_audio_buffer.speech_started',
      'input_audio_buffer.speech_stopped',
      'input_audio_buffer.committed',
      'conversation.item.added',
      'conversation.item.done',
      'conversation.item.input_audio_transcription.delta',
      'conversation.item.input_audio_transcription.completed',
    ]);
    const tr = afterCommit[afterCommit.length - 1]!;
    const trUsage = tr.usage as { type: string; input_tokens: number; output_tokens: number; total_tokens: number; input_token_details: { audio_tokens: number; text_tokens: number } };
    expect(trUsage).toEqual({
      type: 'tokens',
      input_tokens: 15,
      output_tokens: tok(String(tr.transcript)),
      total_tokens: 15 + tok(String(tr.transcript)),
      input_token_details: { audio_tokens: 15, text_tokens: 0 },
    });

    c.send({ type: 'response.create' });
    const turn = await c.until('response.done');
    expect(shape(turn)).toEqual([
      'response.created',
      'response.output_item.added',
      'conversation.item.added',
      'response.content_part.added',
      'response.output_audio_transcript.delta*',
      'response.output_audio.delta*',
      'response.output_audio.done',
      'response.output_audio_transcript.done',
      'response.content_part.done',
      'response.output_item.done',
      'conversation.item.done',
      'response.done',
    ]);
    const resp = (turn[turn.length - 1] as ResponseEvent).response;
    expect(resp).toMatchObject({ object: 'realtime.response', status: 'completed', output_modalities: ['audio'], audio: { output: { voice: 'marin' } } });
    const transcript = textOf(turn, 'response.output_audio_transcript.delta');
    expect(resp.output[0]!.content).toEqual([{ type: 'output_audio', transcript }]);
    const u = resp.usage!;
    checkUsage(u);
    expect(u.input_token_details.audio_tokens).toBe(15);
    expect(u.input_token_details.text_tokens).toBe(tok('Speak slowly.'));
    expect(u.output_token_details.audio_tokens).toBe(audioMsOf(turn, 'response.output_audio.delta') / 50);
    await c.waitFor('rate_limits.updated');
    expect(sim.stats.usageTotals.total_tokens).toBe(u.total_tokens);
    await c.close();
  });

  it('streams text deltas for text-only responses', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime-mini'));
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there' }] } });
    c.send({ type: 'response.create', response: { output_modalities: ['text'], metadata: { topic: 'x' } } });
    const turn = await c.until('response.done');
    expect(turn.some((e) => e.type.includes('audio'))).toBe(false);
    const text = textOf(turn, 'response.output_text.delta');
    expect(turn.find((e) => e.type === 'response.output_text.done')?.text).toBe(text);
    const resp = (turn[turn.length - 1] as ResponseEvent).response;
    expect(resp.metadata).toEqual({ topic: 'x' });
    expect(resp.output[0]!.content).toEqual([{ type: 'output_text', text }]);
    expect(resp.usage!.output_token_details).toEqual({ text_tokens: tok(text), audio_tokens: 0 });
    await c.close();
  });

  it('answers malformed and unknown client events with error events and keeps going', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    await c.waitFor('session.created');
    c.ws.send('{"type": "session.update", ');
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_json', event_id: null });
    c.send({ type: 'session.frobnicate', event_id: 'evt_client_1' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'type', event_id: 'evt_client_1' });
    c.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect((await c.waitFor<ErrorEvent>('error')).error.type).toBe('invalid_request_error');
    // A beta field on a GA session is refused, as upstream does after a dialect mix-up.
    c.send({ type: 'session.update', session: { modalities: ['text'] }, event_id: 'evt_2' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ code: 'unknown_parameter', param: 'session.modalities', event_id: 'evt_2' });
    c.send({ type: 'response.cancel', event_id: 'evt_3' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ code: 'response_cancel_not_active', event_id: 'evt_3' });
    c.send({ type: 'input_audio_buffer.append', audio: pcm16(50) });
    c.send({ type: 'input_audio_buffer.commit', event_id: 'evt_4' });
    expect((await c.waitFor<ErrorEvent>('error')).error).toMatchObject({ code: 'input_audio_buffer_commit_empty', event_id: 'evt_4' });
    c.send({ type: 'input_audio_buffer.clear' });
    await c.waitFor('input_audio_buffer.cleared');
    c.send({ type: 'response.create' });
    c.send({ type: 'response.create', event_id: 'evt_5' });
    const err = await c.waitFor<ErrorEvent>('error');
    expect(err.error).toMatchObject({ code: 'conversation_already_has_active_response', event_id: 'evt_5' });
    await c.waitFor('response.done');
    c.send({ type: 'session.update', session: { instructions: 'still alive' } });
    expect((await c.waitFor<SessionEvent>('session.updated')).session.instructions).toBe('still alive');
    await c.close();
  });

  it('records every text frame byte-for-byte', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'), { headers: { 'X-Client-Request-Id': 'raw-check' } });
    const id = sim.connections()[0]!.id;
    const raw = '{ "type":"session.update",  "session": {"instructions":"é ✓"}, "event_id":"e1" }';
    c.ws.send(raw);
    c.ws.send('not json');
    await c.waitFor('session.updated');
    await c.waitFor('error');
    expect(sim.stats.receivedClientEvents.filter((e) => e.connectionId === id)).toEqual([
      { connectionId: id, type: 'session.update', raw },
      { connectionId: id, type: '', raw: 'not json' },
    ]);
    await c.close();
  });

  it('auto-responds on commit only when the client asked for create_response', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: { type: 'server_vad', create_response: true } } } } });
    await c.waitFor('session.updated');
    c.send({ type: 'input_audio_buffer.append', audio: pcm16(300) });
    c.send({ type: 'input_audio_buffer.commit' });
    const done = await c.waitFor<ResponseEvent>('response.done');
    expect(done.response.usage!.input_token_details.audio_tokens).toBe(3);
    c.send({ type: 'session.update', session: { type: 'realtime', audio: { input: { turn_detection: null } } } });
    await c.waitFor('session.updated');
    c.send({ type: 'input_audio_buffer.append', audio: pcm16(300) });
    c.send({ type: 'input_audio_buffer.commit' });
    await c.waitFor('input_audio_buffer.committed');
    await c.waitFor('conversation.item.done');
    expect(await c.quiet(80)).toEqual([]);
    expect(c.events.filter((e) => e.type === 'input_audio_buffer.speech_started')).toHaveLength(1);
    await c.close();
    await eventually(() => sim.stats.connectionsClosed === 1);
  });
});
