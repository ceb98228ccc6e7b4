import { DialectTranslator, spliceType } from '../../src/relay/dialect/translator';

const AUDIO = Buffer.alloc(4800, 7).toString('base64');
const frame = (type: string, idFirst = false): string =>
  idFirst
    ? `{"event_id":"event_1","type":"${type}","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"${AUDIO}"}`
    : `{"type":"${type}","event_id":"event_1","response_id":"resp_1","item_id":"item_1","output_index":0,"content_index":0,"delta":"${AUDIO}"}`;

describe('dialect translator', () => {
  it.each([false, true])('renames an audio delta by splicing bytes, both ways (event_id first: %s)', (idFirst) => {
    const ga = frame('response.output_audio.delta', idFirst);
    const beta = frame('response.audio.delta', idFirst);
    // GA → beta (a beta app on OpenAI): in place, the payload untouched.
    const toBeta = new DialectTranslator('beta', 'ga').toClient('response.output_audio.delta', Buffer.from(ga)) as Buffer;
    expect(toBeta.toString()).toBe(beta);
    // beta → GA (a GA app on CometAPI): one copy.
    const toGa = new DialectTranslator('ga', 'beta').toClient('response.audio.delta', Buffer.from(beta)) as Buffer;
    expect(toGa.toString()).toBe(ga);
  });

  it('falls back to re-serialising when the type is not in the prefix', () => {
    const odd = `{"meta":{"a":1},"type":"response.output_audio.delta","delta":"${AUDIO}"}`;
    expect(spliceType(Buffer.from(odd), 'response.output_audio.delta', 'response.audio.delta')).toBeNull();
    const out = new DialectTranslator('beta', 'ga').toClient('response.output_audio.delta', Buffer.from(odd)) as Buffer;
    expect(JSON.parse(out.toString())).toEqual({ meta: { a: 1 }, type: 'response.audio.delta', delta: AUDIO });
  });

  it('passes appends and unknown events as the same buffer', () => {
    const t = new DialectTranslator('beta', 'ga');
    const append = Buffer.from(`{"type":"input_audio_buffer.append","audio":"${AUDIO}"}`);
    expect(t.toUpstream('input_audio_buffer.append', append)).toBe(append);
    const rl = Buffer.from('{"type":"rate_limits.updated","rate_limits":[]}');
    expect(t.toClient('rate_limits.updated', rl)).toBe(rl);
  });

  it('GA conversation.item.done is dropped for a beta client; beta conversation.created for a GA client', () => {
    expect(new DialectTranslator('beta', 'ga').toClient('conversation.item.done', Buffer.from('{"type":"conversation.item.done","item":{"id":"i"}}'))).toEqual([]);
    expect(new DialectTranslator('ga', 'beta').toClient('conversation.created', Buffer.from('{"type":"conversation.created","conversation":{}}'))).toEqual([]);
  });

  it('refuses GA-only requests to a beta upstream by name: images, mcp items, prompts, odd formats', () => {
    const t = new DialectTranslator('ga', 'beta');
    const refuse = (type: string, event: object): unknown => t.toUpstream(type, Buffer.from(JSON.stringify({ type, event_id: 'e1', ...event })));
    expect(refuse('conversation.item.create', { item: { type: 'message', role: 'user', content: [{ type: 'input_image', image_url: 'data:' }] } })).toMatchObject({ error: { code: 'dialect_untranslatable', param: 'item.content[0].type', event_id: 'e1' } });
    expect(refuse('conversation.item.create', { item: { type: 'mcp_approval_response', approve: true } })).toMatchObject({ error: { param: 'item.type' } });
    expect(refuse('session.update', { session: { type: 'realtime', prompt: { id: 'pmpt_1' } } })).toMatchObject({ error: { param: 'session.prompt' } });
    expect(refuse('session.update', { session: { type: 'realtime', audio: { input: { format: { type: 'audio/pcm', rate: 16000 } } } } })).toMatchObject({ error: { param: 'session.audio.input.format' } });
    expect(refuse('response.create', { response: { reasoning: { effort: 'high' } } })).toMatchObject({ error: { param: 'response.reasoning' } });
    // The neutral values of GA-only settings are simply left out.
    const ok = refuse('session.update', { session: { type: 'realtime', truncation: 'auto', prompt: null } }) as Buffer;
    expect(JSON.parse(ok.toString())).toEqual({ type: 'session.update', event_id: 'e1', session: {} });
  });
});
