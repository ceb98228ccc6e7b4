import { normaliseUsage, parseResponseDone, parseTranscriptionCompleted } from '../../src/metering/usage';
import { REFERENCE_USAGE } from './fixtures/usage';

const done = (response: object): object => ({ type: 'response.done', event_id: 'event_42', response });

describe('parseResponseDone', () => {
  it('reads the reference event (beta and GA share the shape)', () => {
    expect(parseResponseDone(done({ id: 'resp_1', object: 'realtime.response', status: 'completed', output: [], usage: REFERENCE_USAGE }))).toEqual({
      responseId: 'resp_1',
      status: 'completed',
      usageProblem: null,
      usage: {
        input_text: 294,
        input_audio: 95,
        input_image: 0,
        cached_text: 180,
        cached_audio: 88,
        cached_image: 0,
        output_text: 10,
        output_audio: 523,
        output_reasoning: 0,
        duration_ms: 0,
      },
    });
  });

  it('keeps the usage of cancelled, incomplete and failed responses', () => {
    for (const status of ['cancelled', 'incomplete', 'failed']) {
      const r = parseResponseDone(done({ id: 'r', status, usage: REFERENCE_USAGE }));
      expect(r?.status).toBe(status);
      expect(r?.usage?.output_audio).toBe(523);
    }
  });

  it('flags usage: null and absent usage as missing (the meter estimates them)', () => {
    expect(parseResponseDone(done({ id: 'r', status: 'cancelled', usage: null }))).toEqual({ responseId: 'r', status: 'cancelled', usage: null, usageProblem: 'missing' });
    expect(parseResponseDone(done({ id: 'r', status: 'failed' }))?.usageProblem).toBe('missing');
  });

  it.each([
    ['a string count', { input_tokens: '100', output_tokens: 5 }],
    ['a fraction', { input_tokens: 1.5, output_tokens: 5 }],
    ['a negative count', { input_tokens: 10, output_tokens: -5 }],
    ['an absurd count', { input_tokens: 10, output_tokens: 5, output_token_details: { text_tokens: 0, audio_tokens: 1e12 } }],
    ['details that are not objects', { input_tokens: 10, output_tokens: 5, input_token_details: 'lots' }],
    ['no counts at all', { foo: 1 }],
    ['not an object', 42],
  ])('refuses usage with %s as malformed', (_what, usage) => {
    expect(parseResponseDone(done({ id: 'r', status: 'completed', usage }))).toMatchObject({ usage: null, usageProblem: 'malformed' });
  });

  it('ignores other events and responses without an id', () => {
    expect(parseResponseDone({ type: 'response.created', response: { id: 'r' } })).toBeNull();
    expect(parseResponseDone(done({ status: 'completed', usage: REFERENCE_USAGE }))).toBeNull();
    expect(parseResponseDone(null)).toBeNull();
    expect(parseResponseDone('response.done')).toBeNull();
  });

  it('counts reasoning tokens once: they are inside the text output', () => {
    const usage = { ...REFERENCE_USAGE, output_token_details: { text_tokens: 500, audio_tokens: 0, reasoning_tokens: 400 } };
    expect(normaliseUsage(usage)?.output_text).toBe(500);
  });
});

describe('normaliseUsage', () => {
  it('attributes a bare cached_tokens total to text first, then audio', () => {
    const u = normaliseUsage({
      input_tokens: 300,
      output_tokens: 0,
      input_token_details: { text_tokens: 100, audio_tokens: 150, image_tokens: 50, cached_tokens: 180 },
    });
    // 180 cached: 100 to text (all of it), the remaining 80 to audio.
    expect(u).toMatchObject({ cached_text: 100, cached_audio: 80, cached_image: 0 });

    const more = normaliseUsage({ input_token_details: { text_tokens: 10, audio_tokens: 20, image_tokens: 30, cached_tokens: 45 } });
    // 45: 10 text, 20 audio, 15 image.
    expect(more).toMatchObject({ cached_text: 10, cached_audio: 20, cached_image: 15 });
  });

  it('caps cached at the input of its kind', () => {
    const u = normaliseUsage({
      input_token_details: { text_tokens: 10, audio_tokens: 5, cached_tokens_details: { text_tokens: 50, audio_tokens: 9 } },
    });
    expect(u).toMatchObject({ input_text: 10, cached_text: 10, input_audio: 5, cached_audio: 5 });
  });

  it('takes totals as text when details are missing', () => {
    expect(normaliseUsage({ input_tokens: 12, output_tokens: 34 })).toMatchObject({ input_text: 12, output_text: 34, input_audio: 0, output_audio: 0 });
  });

  it('treats garbage counts as 0', () => {
    const u = normaliseUsage({
      input_token_details: { text_tokens: -5, audio_tokens: 1.5, image_tokens: '7', cached_tokens_details: { text_tokens: Number.NaN } },
      output_token_details: { text_tokens: Infinity, audio_tokens: 3 },
    });
    expect(u).toEqual({
      input_text: 0,
      input_audio: 0,
      input_image: 0,
      cached_text: 0,
      cached_audio: 0,
      cached_image: 0,
      output_text: 0,
      output_audio: 3,
      output_reasoning: 0,
      duration_ms: 0,
    });
  });
});

describe('parseTranscriptionCompleted', () => {
  const base = { type: 'conversation.item.input_audio_transcription.completed', item_id: 'item_1', content_index: 0, transcript: 'hi' };

  it('reads token usage', () => {
    const t = parseTranscriptionCompleted({
      ...base,
      usage: { type: 'tokens', total_tokens: 130, input_tokens: 100, output_tokens: 30, input_token_details: { audio_tokens: 90, text_tokens: 10 } },
    });
    expect(t).toMatchObject({ itemId: 'item_1', kind: 'tokens', usage: { input_audio: 90, input_text: 10, output_text: 30 } });
  });

  it('takes token input without details as audio', () => {
    const t = parseTranscriptionCompleted({ ...base, usage: { type: 'tokens', input_tokens: 100, output_tokens: 30 } });
    expect(t?.usage).toMatchObject({ input_audio: 100, input_text: 0, output_text: 30 });
  });

  it('reads duration usage in milliseconds', () => {
    const t = parseTranscriptionCompleted({ ...base, usage: { type: 'duration', seconds: 7.25 } });
    expect(t).toMatchObject({ kind: 'duration', usage: { duration_ms: 7250, input_audio: 0 } });
  });

  it('has no usage when upstream sent none', () => {
    expect(parseTranscriptionCompleted(base)).toEqual({ itemId: 'item_1', contentIndex: 0, usage: null, kind: null });
    expect(parseTranscriptionCompleted({ ...base, item_id: undefined })).toBeNull();
    expect(parseTranscriptionCompleted({ ...base, type: 'conversation.item.input_audio_transcription.delta' })).toBeNull();
  });
});
