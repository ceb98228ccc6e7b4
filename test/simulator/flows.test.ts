import { RealtimeSimulator } from '../../src/simulator';
import { TestClient, b64bytes, checkUsage, wsUrl, type DeltaEvent, type ResponseEvent, type ServerEvent } from './helpers';

let sim: RealtimeSimulator;
beforeEach(async () => {
  sim = new RealtimeSimulator({ seed: 3, deltaIntervalMs: 25 });
  await sim.start();
});
afterEach(() => sim.stop());

const tok = (s: string): number => (s.length === 0 ? 0 : Math.max(1, Math.ceil(s.length / 4)));
const TOOLS = [
  { type: 'function', name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer' } }, required: ['city', 'days'] } },
  { type: 'function', name: 'book_table', description: 'Book', parameters: { type: 'object', properties: {} } },
];

describe('function calls', () => {
  it.each([
    ['ga', 'gpt-realtime', {}, 'response.output_audio.delta', 'conversation.item.added'],
    ['beta', 'gpt-4o-realtime-preview-2025-06-03', { 'OpenAI-Beta': 'realtime=v1' }, 'response.audio.delta', 'conversation.item.created'],
  ])('%s: calls the named tool, then answers in audio after the tool output', async (dialect, model, headers, audioDelta, itemCreated) => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, `model=${model}`), { headers });
    c.send({ type: 'session.update', session: { ...(dialect === 'ga' ? { type: 'realtime' } : {}), tools: TOOLS, instructions: 'x' } });
    await c.waitFor('session.updated');
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'please call get_weather for Paris' }] } });
    c.send({ type: 'response.create' });
    const turn = await c.until('response.done');
    const added = turn.find((e) => e.type === 'response.output_item.added')!;
    const item = added.item as { type: string; name: string; call_id: string; id: string };
    expect(item).toMatchObject({ type: 'function_call', name: 'get_weather', status: 'in_progress' });
    expect(item.call_id).toMatch(/^call_/);
    expect(turn.some((e) => e.type === itemCreated && (e.item as { id: string }).id === item.id)).toBe(true);
    expect(turn.some((e) => e.type.includes('audio'))).toBe(false);
    const args = turn.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => (e as DeltaEvent).delta).join('');
    expect(JSON.parse(args)).toEqual({ city: 'sample', days: 1 });
    expect(turn.find((e) => e.type === 'response.function_call_arguments.done')).toMatchObject({ call_id: item.call_id, name: 'get_weather', arguments: args });
    const resp = (turn[turn.length - 1] as ResponseEvent).response;
    expect(resp.status).toBe('completed');
    expect(resp.output).toEqual([expect.objectContaining({ type: 'function_call', status: 'completed', name: 'get_weather', call_id: item.call_id, arguments: args })]);
    checkUsage(resp.usage!);
    expect(resp.usage!.output_token_details).toEqual({ text_tokens: tok(args), audio_tokens: 0 });

    c.send({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: item.call_id, output: '{"temp_c":21}' } });
    await c.waitFor((e) => e.type === itemCreated && (e.item as { type: string }).type === 'function_call_output');
    c.send({ type: 'response.create' });
    const turn2 = await c.until('response.done');
    const resp2 = (turn2[turn2.length - 1] as ResponseEvent).response;
    expect(resp2.output[0]!.type).toBe('message');
    expect(turn2.filter((e) => e.type === audioDelta).length).toBeGreaterThan(0);
    // Context now holds the user text, the call and its output on top of the first input.
    const firstIn = resp.usage!.input_token_details.text_tokens;
    expect(resp2.usage!.input_token_details.text_tokens).toBe(firstIn + tok('get_weather' + args) + tok('{"temp_c":21}'));
    await c.close();
  });

  it('does not call a tool the user did not name, and honours tool_choice none', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    c.send({ type: 'session.update', session: { type: 'realtime', tools: TOOLS } });
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'just chat' }] } });
    c.send({ type: 'response.create' });
    expect((await c.waitFor<ResponseEvent>('response.done')).response.output[0]!.type).toBe('message');
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'book_table now' }] } });
    c.send({ type: 'response.create', response: { tool_choice: 'none' } });
    expect((await c.waitFor<ResponseEvent>('response.done')).response.output[0]!.type).toBe('message');
    await c.close();
  });
});

describe('response.cancel', () => {
  it('stops streaming and reports cancelled with partial usage', async () => {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Tell me a long story' }] } });
    c.send({ type: 'response.create' });
    await c.waitFor('response.output_audio.delta');
    c.send({ type: 'response.cancel' });
    const events = await c.until('response.done');
    const all = c.events.slice(0, c.events.indexOf(events[events.length - 1]!) + 1);
    const done = (all[all.length - 1] as ResponseEvent).response;
    expect(done.status).toBe('cancelled');
    expect(done.status_details).toEqual({ type: 'cancelled', reason: 'client_cancelled' });
    expect(all.some((e) => e.type === 'response.output_audio.done')).toBe(false);
    const audio = all.filter((e) => e.type === 'response.output_audio.delta');
    const sentMs = audio.reduce((n, e) => n + b64bytes((e as DeltaEvent).delta), 0) / 48;
    const transcript = all.filter((e) => e.type === 'response.output_audio_transcript.delta').map((e) => (e as DeltaEvent).delta).join('');
    expect(audio.length).toBeGreaterThanOrEqual(1);
    expect(audio.length).toBeLessThan(6); // a full response is 6..14 chunks of 100 ms
    const u = done.usage!;
    checkUsage(u);
    expect(u.output_token_details).toEqual({ text_tokens: tok(transcript), audio_tokens: sentMs / 50 });
    expect(u.input_token_details.text_tokens).toBeGreaterThan(tok('Tell me a long story'));
    expect(done.output[0]).toMatchObject({ status: 'incomplete', content: [{ type: 'output_audio', transcript }] });
    const item = all.find((e) => e.type === 'response.output_item.done')!;
    expect((item.item as { status: string }).status).toBe('incomplete');
    await c.waitFor('rate_limits.updated');
    // Nothing more for the cancelled response.
    expect((await c.quiet(100)).filter((e: ServerEvent) => e.type.startsWith('response.'))).toEqual([]);
    expect(sim.stats).toMatchObject({ cancelled: 1, responseDoneSent: 1 });
    expect(sim.stats.usageTotals.output_audio_tokens).toBe(sentMs / 50);
    // The conversation is free again.
    c.send({ type: 'response.create' });
    expect((await c.waitFor<ResponseEvent>('response.done')).response.status).toBe('completed');
    await c.close();
  });
});
