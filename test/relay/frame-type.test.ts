import fc from 'fast-check';
import { isFrameProblem, readClientFrameType, readFrameType, type FrameRead, type FrameProblem } from '../../src/relay/frame-type';

const PROTOCOL_TYPES = [
  'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear',
  'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve',
  'response.create', 'response.cancel', 'output_audio_buffer.clear', 'transcription_session.update',
  'error', 'session.created', 'session.updated', 'conversation.created', 'conversation.item.created',
  'conversation.item.added', 'conversation.item.done', 'conversation.item.input_audio_transcription.delta',
  'conversation.item.input_audio_transcription.completed', 'conversation.item.input_audio_transcription.failed',
  'conversation.item.truncated', 'conversation.item.deleted', 'conversation.item.retrieved',
  'input_audio_buffer.committed', 'input_audio_buffer.cleared', 'input_audio_buffer.speech_started',
  'input_audio_buffer.speech_stopped', 'input_audio_buffer.timeout_triggered', 'output_audio_buffer.started',
  'output_audio_buffer.stopped', 'output_audio_buffer.cleared', 'response.created', 'response.done',
  'response.output_item.added', 'response.output_item.done', 'response.content_part.added', 'response.content_part.done',
  'response.text.delta', 'response.text.done', 'response.output_text.delta', 'response.output_text.done',
  'response.audio.delta', 'response.audio.done', 'response.output_audio.delta', 'response.output_audio.done',
  'response.audio_transcript.delta', 'response.audio_transcript.done', 'response.output_audio_transcript.delta',
  'response.output_audio_transcript.done', 'response.function_call_arguments.delta',
  'response.function_call_arguments.done', 'response.mcp_call.in_progress', 'rate_limits.updated',
];

const readers: Array<[string, (b: Buffer) => FrameRead | FrameProblem]> = [
  ['readFrameType', readFrameType],
  ['readClientFrameType', readClientFrameType],
];

function jsonAnswer(text: string): string | FrameProblem {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return 'invalid_json';
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return 'not_an_event';
  const t = (v as Record<string, unknown>).type;
  return typeof t === 'string' ? t : 'not_an_event';
}

function answer(r: FrameRead | FrameProblem): string {
  return isFrameProblem(r) ? r : r.type;
}

/** A JSON value of moderate size, nested objects included. */
const jsonValue = fc.jsonValue({ maxDepth: 3 });

/** Events with the type at a random position among other keys, serialised with random whitespace. */
const eventText = fc
  .record({
    type: fc.oneof(fc.constantFrom(...PROTOCOL_TYPES), fc.string(), fc.string({ unit: 'binary' })),
    others: fc.dictionary(fc.string().filter((k) => k !== 'type'), jsonValue, { maxKeys: 5 }),
    position: fc.nat(),
    indent: fc.constantFrom(undefined, 0, 1, 2, '\t'),
  })
  .map(({ type, others, position, indent }) => {
    const entries = Object.entries(others);
    entries.splice(position % (entries.length + 1), 0, ['type', type]);
    return JSON.stringify(Object.fromEntries(entries), null, indent);
  });

describe.each(readers)('%s', (_name, read) => {
  it('reads every protocol event type from a typical frame', () => {
    for (const type of PROTOCOL_TYPES) {
      const frame = Buffer.from(JSON.stringify({ type, event_id: 'event_1', audio: 'AAAA' }));
      expect(answer(read(frame))).toBe(type);
      const late = Buffer.from(JSON.stringify({ event_id: 'event_1', response_id: 'resp_1', output_index: 0, type, delta: 'QUJD' }));
      expect(answer(read(late))).toBe(type);
    }
  });

  it('agrees with JSON.parse on events with reordered keys, whitespace and escaped strings', () => {
    fc.assert(
      fc.property(eventText, (text) => {
        expect(answer(read(Buffer.from(text)))).toBe(jsonAnswer(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with JSON.parse on any JSON text', () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 3 }), (text) => {
        expect(answer(read(Buffer.from(text)))).toBe(jsonAnswer(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on malformed input, and never accepts what cannot be an event', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')), eventText.map((t) => t.slice(0, Math.max(0, t.length - 3)))), (text) => {
        const r = read(Buffer.from(text));
        const expected = jsonAnswer(text);
        if (!isFrameProblem(r) && (expected === 'invalid_json' || expected === 'not_an_event')) {
          // The fast path does not validate the bytes after `type`: only a frame whose prefix
          // names a type may pass, and the upstream rejects the rest.
          expect(text.trimStart().startsWith('{')).toBe(true);
        } else {
          expect(answer(r)).toBe(expected);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('classifies non-events', () => {
    expect(read(Buffer.from('not json'))).toBe('invalid_json');
    expect(read(Buffer.from('[1,2]'))).toBe('not_an_event');
    expect(read(Buffer.from('{"type": 3}'))).toBe('not_an_event');
    expect(read(Buffer.from('{"event_id":"e"}'))).toBe('not_an_event');
    expect(read(Buffer.from(''))).toBe('invalid_json');
  });

  it('does not parse a large audio frame', () => {
    const audio = Buffer.alloc(96_000, 7).toString('base64');
    const r = read(Buffer.from(`{"type":"input_audio_buffer.append","audio":"${audio}"}`));
    expect(r).toEqual({ type: 'input_audio_buffer.append' });
  });
});

describe('readClientFrameType against hidden type keys', () => {
  it('uses the last type key, as the upstream parser would', () => {
    const frame = Buffer.from('{"type":"input_audio_buffer.append","audio":"AAAA","type":"session.update","session":{}}');
    expect(answer(readFrameType(frame))).toBe('input_audio_buffer.append');
    expect(answer(readClientFrameType(frame))).toBe('session.update');
  });
  it('sees an escaped spelling of type', () => {
    const frame = Buffer.from('{"type":"input_audio_buffer.append","\\u0074ype":"session.update"}');
    expect(answer(readClientFrameType(frame))).toBe('session.update');
  });
});
