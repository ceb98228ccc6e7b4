/**
 * Turns upstream usage reports into one flat record per billed event. Upstream JSON is
 * untrusted: every count is read defensively (missing, negative, fractional or non-numeric
 * values count as 0) so a malformed event can never produce a negative or NaN cost.
 */
import { secondsToMs } from './money';

export interface TokenUsage {
  /** All text input tokens, cached ones included (cached is a subset of input). */
  input_text: number;
  input_audio: number;
  input_image: number;
  cached_text: number;
  cached_audio: number;
  cached_image: number;
  /** Includes reasoning tokens, which upstream reports inside the text output: billed once. */
  output_text: number;
  output_audio: number;
  /**
   * Reasoning tokens (`output_token_details.reasoning_tokens`): a part of `output_text`, kept for
   * reporting only. Never billed on their own: they are billed once, inside output_text.
   */
  output_reasoning: number;
  /** Audio length for duration-priced transcription, in whole milliseconds; 0 otherwise. */
  duration_ms: number;
}

export const TOKEN_FIELDS = [
  'input_text',
  'input_audio',
  'input_image',
  'cached_text',
  'cached_audio',
  'cached_image',
  'output_text',
  'output_audio',
  'output_reasoning',
] as const;

export function emptyUsage(): TokenUsage {
  return {
    input_text: 0,
    input_audio: 0,
    input_image: 0,
    cached_text: 0,
    cached_audio: 0,
    cached_image: 0,
    output_text: 0,
    output_audio: 0,
    output_reasoning: 0,
    duration_ms: 0,
  };
}

export interface ResponseDone {
  responseId: string;
  /** completed | cancelled | incomplete | failed | … as reported; "unknown" when absent. */
  status: string;
  /** null when upstream reported no usage, or usage the relay cannot trust (see usageProblem). */
  usage: TokenUsage | null;
  /** Why `usage` is null: absent, or present but malformed; null when the usage is sound. */
  usageProblem: UsageProblem | null;
}

export type UsageProblem = 'missing' | 'malformed';

/**
 * Sanity bound on any one token count of one response. A realtime context holds at most some
 * 128k tokens and a response emits at most 4,096; a count past a million is not a usage report
 * but a bug or a forgery, and is never billed as reported (the response is estimated instead).
 * It also keeps every cost far inside the BIGINT nano-dollar column.
 */
export const MAX_REPORTED_TOKENS = 1_000_000;

const USAGE_COUNT_PATHS: ReadonlyArray<readonly string[]> = [
  ['total_tokens'],
  ['input_tokens'],
  ['output_tokens'],
  ['input_token_details', 'text_tokens'],
  ['input_token_details', 'audio_tokens'],
  ['input_token_details', 'image_tokens'],
  ['input_token_details', 'cached_tokens'],
  ['input_token_details', 'cached_tokens_details', 'text_tokens'],
  ['input_token_details', 'cached_tokens_details', 'audio_tokens'],
  ['input_token_details', 'cached_tokens_details', 'image_tokens'],
  ['output_token_details', 'text_tokens'],
  ['output_token_details', 'audio_tokens'],
  ['output_token_details', 'reasoning_tokens'],
];

/**
 * Whether a response's `usage` can be billed as reported: every count that is present must be
 * a non-negative integer within MAX_REPORTED_TOKENS (no strings, fractions, negatives, NaN,
 * absurd sizes), details must be objects, and at least the input or output total is present.
 */
export function usageProblem(raw: unknown): UsageProblem | null {
  if (raw === null || raw === undefined) return 'missing';
  const u = obj(raw);
  if (!u) return 'malformed';
  for (const d of ['input_token_details', 'output_token_details']) {
    if (u[d] !== undefined && u[d] !== null && !obj(u[d])) return 'malformed';
  }
  let counted = 0;
  for (const path of USAGE_COUNT_PATHS) {
    let v: unknown = u;
    for (const k of path) v = obj(v)?.[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > MAX_REPORTED_TOKENS) return 'malformed';
    counted++;
  }
  return counted === 0 ? 'malformed' : null;
}

export interface TranscriptionDone {
  itemId: string;
  contentIndex: number;
  usage: TokenUsage | null;
  /** Which unit upstream billed in; decides which kind of price the model must have. */
  kind: 'tokens' | 'duration' | null;
}

type Json = Record<string, unknown>;

function obj(v: unknown): Json | null {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : null;
}

function count(v: unknown): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : 0;
}

function has(o: Json | null, key: string): boolean {
  return o !== null && typeof o[key] === 'number';
}

/**
 * Normalises `response.usage` (beta and GA share this shape).
 *
 * - Without `input_token_details`, all input tokens are taken as text, and likewise output:
 *   only OpenAI-compatible servers that speak text omit the details.
 * - Cached tokens: from `cached_tokens_details` when present. When only the `cached_tokens`
 *   total is given, it is attributed to text first, then audio, then image, each capped at that
 *   kind's input: text is what prompt caching reuses most (instructions, history), and this
 *   order never bills more than the per-kind split would at the published prices.
 * - Cached counts are capped at the input of their kind so the uncached remainder is never negative.
 */
export function normaliseUsage(raw: unknown): TokenUsage | null {
  const u = obj(raw);
  if (!u) return null;
  const usage = emptyUsage();
  const inDetails = obj(u.input_token_details);
  const outDetails = obj(u.output_token_details);

  if (inDetails && (has(inDetails, 'text_tokens') || has(inDetails, 'audio_tokens') || has(inDetails, 'image_tokens'))) {
    usage.input_text = count(inDetails.text_tokens);
    usage.input_audio = count(inDetails.audio_tokens);
    usage.input_image = count(inDetails.image_tokens);
  } else {
    usage.input_text = count(u.input_tokens);
  }
  if (outDetails && (has(outDetails, 'text_tokens') || has(outDetails, 'audio_tokens'))) {
    usage.output_text = count(outDetails.text_tokens);
    usage.output_audio = count(outDetails.audio_tokens);
    // Inside text_tokens (a subset, like cached input): capped so it can never exceed them.
    usage.output_reasoning = Math.min(count(outDetails.reasoning_tokens), usage.output_text);
  } else {
    usage.output_text = count(u.output_tokens);
  }

  const cachedDetails = obj(inDetails?.cached_tokens_details);
  if (cachedDetails) {
    usage.cached_text = Math.min(count(cachedDetails.text_tokens), usage.input_text);
    usage.cached_audio = Math.min(count(cachedDetails.audio_tokens), usage.input_audio);
    usage.cached_image = Math.min(count(cachedDetails.image_tokens), usage.input_image);
  } else {
    let rest = count(inDetails?.cached_tokens);
    usage.cached_text = Math.min(rest, usage.input_text);
    rest -= usage.cached_text;
    usage.cached_audio = Math.min(rest, usage.input_audio);
    rest -= usage.cached_audio;
    usage.cached_image = Math.min(rest, usage.input_image);
  }
  return usage;
}

/** Reads a parsed `response.done` event; null when it is not one or has no response id. */
export function parseResponseDone(event: unknown): ResponseDone | null {
  const e = obj(event);
  if (!e || e.type !== 'response.done') return null;
  const response = obj(e.response);
  if (!response || typeof response.id !== 'string' || response.id.length === 0) return null;
  const problem = usageProblem(response.usage);
  return {
    responseId: response.id,
    status: typeof response.status === 'string' ? response.status : 'unknown',
    usage: problem === null ? normaliseUsage(response.usage) : null,
    usageProblem: problem,
  };
}

/**
 * Reads `conversation.item.input_audio_transcription.completed`. Token usage without
 * `input_token_details` is taken as all audio: a transcription's input is the audio buffer
 * (plus an optional short prompt, which the details would show).
 */
export function parseTranscriptionCompleted(event: unknown): TranscriptionDone | null {
  const e = obj(event);
  if (!e || e.type !== 'conversation.item.input_audio_transcription.completed') return null;
  if (typeof e.item_id !== 'string' || e.item_id.length === 0) return null;
  const contentIndex = count(e.content_index);
  const u = obj(e.usage);
  if (!u) return { itemId: e.item_id, contentIndex, usage: null, kind: null };
  const usage = emptyUsage();
  if (u.type === 'duration') {
    usage.duration_ms = secondsToMsSafe(u.seconds);
    return { itemId: e.item_id, contentIndex, usage, kind: 'duration' };
  }
  const details = obj(u.input_token_details);
  if (details && (has(details, 'audio_tokens') || has(details, 'text_tokens'))) {
    usage.input_audio = count(details.audio_tokens);
    usage.input_text = count(details.text_tokens);
  } else {
    usage.input_audio = count(u.input_tokens);
  }
  usage.output_text = count(u.output_tokens);
  return { itemId: e.item_id, contentIndex, usage, kind: 'tokens' };
}

function secondsToMsSafe(v: unknown): number {
  return typeof v === 'number' ? secondsToMs(v) : 0;
}
