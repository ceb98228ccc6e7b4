/** Token accounting. Every figure is derived from what was actually sent, so tests can check it. */
export interface TokenCounts {
  text: number;
  audio: number;
  image: number;
}

// A type alias, not an interface, so it is assignable to JSON objects when put on the wire.
export type RealtimeUsage = {
  total_tokens: number;
  input_tokens: number;
  output_tokens: number;
  input_token_details: {
    text_tokens: number;
    audio_tokens: number;
    image_tokens: number;
    cached_tokens: number;
    cached_tokens_details: { text_tokens: number; audio_tokens: number; image_tokens: number };
  };
  output_token_details: { text_tokens: number; audio_tokens: number };
};

export interface UsageTotals {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_text_tokens: number;
  input_audio_tokens: number;
  input_image_tokens: number;
  cached_tokens: number;
  cached_text_tokens: number;
  cached_audio_tokens: number;
  cached_image_tokens: number;
  output_text_tokens: number;
  output_audio_tokens: number;
  responses: number;
}

export const zeroTokens = (): TokenCounts => ({ text: 0, audio: 0, image: 0 });

export function addTokens(a: TokenCounts, b: TokenCounts): TokenCounts {
  return { text: a.text + b.text, audio: a.audio + b.audio, image: a.image + b.image };
}

/** ≈ 4 characters per token; an empty string costs nothing, any text at least one token. */
export function textTokens(s: string): number {
  return s.length === 0 ? 0 : Math.max(1, Math.ceil(s.length / 4));
}

/** User audio is billed at 10 tokens per second. */
export function inputAudioTokens(ms: number): number {
  return Math.round(ms / 100);
}

/** Model audio is billed at 20 tokens per second. */
export function outputAudioTokens(ms: number): number {
  return Math.round(ms / 50);
}

/** A fixed image cost, as for a low-detail image upstream. */
export const IMAGE_TOKENS = 85;

/**
 * Cached tokens are a prefix of the context already seen by the previous response, so per kind
 * they never exceed either that previous input or the current input. `fraction` comes from the
 * seeded generator.
 */
export function cachedTokens(previous: TokenCounts | null, current: TokenCounts, fraction: number): TokenCounts {
  if (!previous) return zeroTokens();
  const f = Math.min(1, Math.max(0, fraction));
  return {
    text: Math.floor(Math.min(previous.text, current.text) * f),
    audio: Math.floor(Math.min(previous.audio, current.audio) * f),
    image: Math.floor(Math.min(previous.image, current.image) * f),
  };
}

export function buildUsage(input: TokenCounts, cached: TokenCounts, output: { text: number; audio: number }): RealtimeUsage {
  const inputTokens = input.text + input.audio + input.image;
  const outputTokens = output.text + output.audio;
  return {
    total_tokens: inputTokens + outputTokens,
    input_tokens: inputTokens,
    output_tokens: outputTokens,
    input_token_details: {
      text_tokens: input.text,
      audio_tokens: input.audio,
      image_tokens: input.image,
      cached_tokens: cached.text + cached.audio + cached.image,
      cached_tokens_details: { text_tokens: cached.text, audio_tokens: cached.audio, image_tokens: cached.image },
    },
    output_token_details: { text_tokens: output.text, audio_tokens: output.audio },
  };
}

export function emptyTotals(): UsageTotals {
  return {
    input_tokens: 0,
    output_tokens: 0,
    total_tokens: 0,
    input_text_tokens: 0,
    input_audio_tokens: 0,
    input_image_tokens: 0,
    cached_tokens: 0,
    cached_text_tokens: 0,
    cached_audio_tokens: 0,
    cached_image_tokens: 0,
    output_text_tokens: 0,
    output_audio_tokens: 0,
    responses: 0,
  };
}

export function addUsage(t: UsageTotals, u: RealtimeUsage): void {
  const i = u.input_token_details;
  t.input_tokens += u.input_tokens;
  t.output_tokens += u.output_tokens;
  t.total_tokens += u.total_tokens;
  t.input_text_tokens += i.text_tokens;
  t.input_audio_tokens += i.audio_tokens;
  t.input_image_tokens += i.image_tokens;
  t.cached_tokens += i.cached_tokens;
  t.cached_text_tokens += i.cached_tokens_details.text_tokens;
  t.cached_audio_tokens += i.cached_tokens_details.audio_tokens;
  t.cached_image_tokens += i.cached_tokens_details.image_tokens;
  t.output_text_tokens += u.output_token_details.text_tokens;
  t.output_audio_tokens += u.output_token_details.audio_tokens;
  t.responses += 1;
}
