/**
 * Realistic Realtime frames that carry their own timing, so one-way latency can be read at the
 * receiving end without parsing JSON: every frame has a fixed-width `event_id` at a fixed
 * offset (the relay forwards bytes unchanged, so offsets survive the trip).
 *
 * event_id = "ev" + session(6) + seq(9) + scheduled µs(14) + sent µs(14), digits only.
 * Times are `performance.now()` µs of the load process, which owns both ends of every path.
 */
import { randomBytes } from 'node:crypto';

/** 100 ms of 24 kHz mono pcm16. */
export const AUDIO_RAW_BYTES = 4800;

const SESSION_DIGITS = 6;
const SEQ_DIGITS = 9;
const TIME_DIGITS = 14;
const ID_LENGTH = 2 + SESSION_DIGITS + SEQ_DIGITS + 2 * TIME_DIGITS;

/** `delta-beta`: the upstream's delta in the beta dialect, which the relay renames for a GA client (`--translated`). */
export type FrameKind = 'append' | 'delta' | 'delta-beta';

const APPEND_PREFIX = '{"type":"input_audio_buffer.append","event_id":"';
const DELTA_PREFIX = '{"type":"response.output_audio.delta","event_id":"';
const BETA_DELTA_PREFIX = '{"type":"response.audio.delta","event_id":"';

export interface FrameStamp {
  session: number;
  seq: number;
  /** When the frame was due, µs. */
  scheduledUs: number;
  /** When it was handed to `send`, µs. */
  sentUs: number;
}

interface Template {
  bytes: Buffer;
  idOffset: number;
}

function template(kind: FrameKind, audioB64: string): Template {
  const prefix = kind === 'append' ? APPEND_PREFIX : kind === 'delta' ? DELTA_PREFIX : BETA_DELTA_PREFIX;
  const placeholder = 'e'.repeat(ID_LENGTH);
  const body =
    kind === 'append'
      ? `${prefix}${placeholder}","audio":"${audioB64}"}`
      : `${prefix}${placeholder}","response_id":"resp_CRbench0000000000000","item_id":"item_CRbench0000000000000","output_index":0,"content_index":0,"delta":"${audioB64}"}`;
  const bytes = Buffer.from(body, 'utf8');
  bytes.write('ev', prefix.length, 'latin1');
  return { bytes, idOffset: prefix.length };
}

// Random bytes, so the base64 looks like real audio to anything that scans it.
const AUDIO_B64 = randomBytes(AUDIO_RAW_BYTES).toString('base64');
const TEMPLATES: Record<FrameKind, Template> = { append: template('append', AUDIO_B64), delta: template('delta', AUDIO_B64), 'delta-beta': template('delta-beta', AUDIO_B64) };

export function frameBytes(kind: FrameKind): number {
  return TEMPLATES[kind].bytes.length;
}

function writeDigits(buf: Buffer, offset: number, width: number, value: number): void {
  let v = Math.max(0, Math.floor(value));
  for (let i = offset + width - 1; i >= offset; i--) {
    buf[i] = 0x30 + (v % 10);
    v = Math.floor(v / 10);
  }
}

function readDigits(buf: Buffer, offset: number, width: number): number {
  let v = 0;
  for (let i = offset; i < offset + width; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * A fresh frame: the server side of `ws` writes the caller's buffer to the socket without
 * copying, so a shared buffer could be rewritten while still queued.
 */
export function makeFrame(kind: FrameKind, stamp: FrameStamp): Buffer {
  const t = TEMPLATES[kind];
  const buf = Buffer.allocUnsafe(t.bytes.length);
  t.bytes.copy(buf);
  writeStampDigits(buf, t.idOffset + 2, stamp);
  return buf;
}

/** The stamp's digits, after the id's "ev", from `at`. */
function writeStampDigits(buf: Buffer, at: number, stamp: FrameStamp): void {
  let o = at;
  writeDigits(buf, o, SESSION_DIGITS, stamp.session);
  o += SESSION_DIGITS;
  writeDigits(buf, o, SEQ_DIGITS, stamp.seq);
  o += SEQ_DIGITS;
  writeDigits(buf, o, TIME_DIGITS, stamp.scheduledUs);
  o += TIME_DIGITS;
  writeDigits(buf, o, TIME_DIGITS, stamp.sentUs);
}

/** Any fixed non-zero mask: the receiver must unmask every byte, as it would for a browser. */
const WIRE_MASK = Buffer.from([0x5a, 0xc3, 0x17, 0x9e]);

interface WireTemplate {
  bytes: Buffer;
  /** Where the payload starts in the wire frame (after the header and, for a client, the mask). */
  payloadOffset: number;
  masked: boolean;
}

/** Appends go client→server (masked, as RFC 6455 requires), deltas server→client (never masked). */
function wireTemplate(kind: FrameKind): WireTemplate {
  const masked = kind === 'append';
  const payload = TEMPLATES[kind].bytes;
  if (payload.length >= 65536) throw new Error('bench frames use the 16-bit length form');
  const header = Buffer.from([0x81 /* FIN, text */, (masked ? 0x80 : 0) | 126 /* 16-bit length */, payload.length >> 8, payload.length & 0xff]);
  const bytes = Buffer.concat(masked ? [header, WIRE_MASK, payload] : [header, payload]);
  const payloadOffset = header.length + (masked ? WIRE_MASK.length : 0);
  if (masked) for (let i = 0; i < payload.length; i++) bytes[payloadOffset + i] ^= WIRE_MASK[i & 3];
  return { bytes, payloadOffset, masked };
}

const WIRE: Record<FrameKind, WireTemplate> = { append: wireTemplate('append'), delta: wireTemplate('delta'), 'delta-beta': wireTemplate('delta-beta') };
const scratch = Buffer.alloc(ID_LENGTH);

/**
 * A complete wire frame, as `ws` would put it on the socket, without masking (for an append)
 * or framing 6.5 KB in JavaScript for every frame: the payload is prepared once in the template
 * and only the stamp's digits are written per frame. The load generator is one process playing
 * both ends of every session, so it must cost less per frame than the relay it drives; the
 * relay still unmasks every byte of an append, as it must for a real client.
 */
export function makeWireFrame(kind: FrameKind, stamp: FrameStamp): Buffer {
  const out = Buffer.allocUnsafe(WIRE[kind].bytes.length);
  WIRE[kind].bytes.copy(out);
  return restampWireFrame(out, kind, stamp);
}

/**
 * Writes a new stamp into a frame made by makeWireFrame, in place: a sender that knows its
 * socket has flushed the previous frame (nothing buffered) reuses the buffer, so the load
 * generator allocates nothing per frame.
 */
export function restampWireFrame(out: Buffer, kind: FrameKind, stamp: FrameStamp): Buffer {
  const w = WIRE[kind];
  scratch.write('ev', 0, 'latin1');
  writeStampDigits(scratch, 2, stamp);
  const at = TEMPLATES[kind].idOffset;
  for (let i = 0; i < ID_LENGTH; i++) out[w.payloadOffset + at + i] = w.masked ? scratch[i] ^ WIRE_MASK[(at + i) & 3] : scratch[i];
  return out;
}

/** How many leading payload bytes hold everything readStamp needs, for either kind. */
export const STAMP_PREFIX_BYTES = Math.max(TEMPLATES.append.idOffset, TEMPLATES.delta.idOffset) + ID_LENGTH;

/**
 * The stamp of a bench frame of this kind, or null for anything else (e.g. a relay error event).
 * `buf` may hold only the frame's first bytes (at least STAMP_PREFIX_BYTES) when `frameLength`
 * gives the whole frame's length.
 */
export function readStamp(kind: FrameKind, buf: Buffer, frameLength = buf.length): FrameStamp | null {
  const t = TEMPLATES[kind];
  if (frameLength !== t.bytes.length || buf.length < t.idOffset + ID_LENGTH) return null;
  if (buf[t.idOffset] !== 0x65 /* e */ || buf.compare(t.bytes, 0, t.idOffset, 0, t.idOffset) !== 0) return null;
  let o = t.idOffset + 2;
  const session = readDigits(buf, o, SESSION_DIGITS);
  o += SESSION_DIGITS;
  const seq = readDigits(buf, o, SEQ_DIGITS);
  o += SEQ_DIGITS;
  const scheduledUs = readDigits(buf, o, TIME_DIGITS);
  o += TIME_DIGITS;
  const sentUs = readDigits(buf, o, TIME_DIGITS);
  if (session < 0 || seq < 0 || scheduledUs < 0 || sentUs < 0) return null;
  return { session, seq, scheduledUs, sentUs };
}
