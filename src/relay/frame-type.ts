/**
 * Reads a Realtime event's `type` from the raw bytes of a text frame without JSON-parsing the
 * frame. Audio frames (tens of KB of base64) dominate the traffic and the relay only needs
 * their type, so it walks the top-level keys that precede `type` and stops there.
 *
 * Anything unusual (a nested value before `type`, an escaped key or value, no `type` key)
 * falls back to a full parse, so the answer always agrees with `JSON.parse`.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Why a frame cannot be relayed as an event. */
export type FrameProblem = 'invalid_json' | 'not_an_event';

export interface FrameRead {
  type: string;
  /** Present when the reader had to parse the whole frame: callers reuse it instead of parsing again. */
  parsed?: Record<string, unknown>;
}

const TYPE_KEY = Buffer.from('"type"');

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

function skipWhitespace(buf: Buffer, i: number): number {
  while (i < buf.length && isWhitespace(buf[i])) i++;
  return i;
}

/** Index just past the closing quote of the string whose opening quote is at `start`, or -1. */
function endOfString(buf: Buffer, start: number): number {
  let i = start + 1;
  for (;;) {
    const q = buf.indexOf(QUOTE, i);
    if (q < 0) return -1;
    let backslashes = 0;
    for (let j = q - 1; j > start && buf[j] === BACKSLASH; j--) backslashes++;
    if (backslashes % 2 === 0) return q + 1;
    i = q + 1;
  }
}

/** Whether bytes [from, to) hold no backslash, so they can be compared or decoded as they are. */
function hasNoEscape(buf: Buffer, from: number, to: number): boolean {
  const b = buf.indexOf(BACKSLASH, from);
  return b < 0 || b >= to;
}

/** JSON forbids raw control characters in strings; such a frame is left to the full parse to reject. */
function hasControlByte(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] < 0x20) return true;
  return false;
}

/** Skips a scalar (number, true, false, null); returns -1 at anything else. */
function endOfScalar(buf: Buffer, i: number): number {
  const c = buf[i];
  if (c === OPEN_BRACE || c === 0x5b /* [ */ || c === QUOTE) return -1;
  while (i < buf.length) {
    const d = buf[i];
    if (d === COMMA || d === CLOSE_BRACE || isWhitespace(d)) return i;
    i++;
  }
  return -1;
}

function parseFully(text: Buffer | string): FrameRead | FrameProblem {
  let value: unknown;
  try {
    value = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
  } catch {
    return 'invalid_json';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not_an_event';
  const type = (value as Record<string, unknown>).type;
  if (typeof type !== 'string') return 'not_an_event';
  return { type, parsed: value as Record<string, unknown> };
}

/**
 * The prefix walk: the type if `type` is a top-level key reached through scalar values only,
 * `undefined` when the frame needs a full parse to decide.
 */
function typeFromPrefix(buf: Buffer): { type: string; end: number } | undefined {
  let i = skipWhitespace(buf, 0);
  if (buf[i] !== OPEN_BRACE) return undefined;
  i++;
  for (;;) {
    i = skipWhitespace(buf, i);
    if (buf[i] !== QUOTE) return undefined;
    const keyEnd = endOfString(buf, i);
    if (keyEnd < 0 || !hasNoEscape(buf, i, keyEnd)) return undefined;
    const isType = keyEnd - i === 6 && buf.compare(TYPE_KEY, 0, 6, i, keyEnd) === 0;
    i = skipWhitespace(buf, keyEnd);
    if (buf[i] !== COLON) return undefined;
    i = skipWhitespace(buf, i + 1);
    if (isType) {
      if (buf[i] !== QUOTE) return undefined;
      const valueEnd = endOfString(buf, i);
      if (valueEnd < 0 || !hasNoEscape(buf, i, valueEnd) || hasControlByte(buf, i + 1, valueEnd - 1)) return undefined;
      return { type: buf.toString('utf8', i + 1, valueEnd - 1), end: valueEnd };
    }
    const valueEnd = buf[i] === QUOTE ? endOfString(buf, i) : endOfScalar(buf, i);
    if (valueEnd < 0) return undefined;
    i = skipWhitespace(buf, valueEnd);
    if (buf[i] !== COMMA) return undefined;
    i++;
  }
}

/**
 * The type of a frame from a trusted peer (the upstream). Reads the prefix only; the rest of
 * the frame is not validated.
 */
export function readFrameType(buf: Buffer): FrameRead | FrameProblem {
  const prefix = typeFromPrefix(buf);
  if (prefix) return { type: prefix.type };
  return parseFully(buf);
}

/**
 * The type of a frame from an untrusted peer (a client). A client could hide a second `type`
 * key later in the frame (or an escaped spelling of one) that the upstream's parser would
 * honour, slipping e.g. a `session.update` past the relay's checks. So when the bytes after
 * the type hold another `"type"` or any escape, the frame is parsed in full and JSON's own
 * last-key-wins answer is used. Audio frames hold neither, and stay on the fast path.
 */
export function readClientFrameType(buf: Buffer): FrameRead | FrameProblem {
  const prefix = typeFromPrefix(buf);
  if (prefix && buf.indexOf(TYPE_KEY, prefix.end) < 0 && buf.indexOf(BACKSLASH, prefix.end) < 0) {
    return { type: prefix.type };
  }
  return parseFully(buf);
}

export function isFrameProblem(r: FrameRead | FrameProblem): r is FrameProblem {
  return typeof r === 'string';
}

/**
 * Index just past the closing quote of the `type` value when the prefix walk finds it (the
 * value then holds no escape, so its bytes are its UTF-8), or -1. Lets the dialect translator
 * rename an audio frame's type by splicing bytes, without parsing its payload.
 */
export function typeValueEnd(buf: Buffer): number {
  return typeFromPrefix(buf)?.end ?? -1;
}
