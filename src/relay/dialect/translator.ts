/**
 * Beta ⇄ GA translation of a live session, for a client whose dialect the upstream does not
 * accept (a beta-era app on OpenAI, a GA app on CometAPI).
 *
 * - Renamed events whose payload is the same in both dialects (audio, transcript and text
 *   deltas and dones) are translated by splicing the new type into the frame's bytes: the
 *   base64 audio is never parsed or re-encoded, so an audio frame costs one copy.
 * - Events that carry a differently shaped object (session, response, item) are parsed,
 *   reshaped (shapes.ts) and re-serialised. They are rare: a few per turn.
 * - Everything else passes as the same bytes.
 *
 * A client request the upstream's dialect cannot express is refused with an `error` event
 * (`code: dialect_untranslatable`, `param` naming the field) and not forwarded; the session goes on.
 */
import type { ApiDialect } from '../../config/config';
import { typeValueEnd } from '../frame-type';
import type { ProtocolError } from '../protocol-errors';
import { isObject, reshapeItem, reshapePart, reshapeResponse, reshapeSession, Untranslatable, type JsonObject } from './shapes';

/** A client frame to send upstream, or the reason it cannot be. */
export type UpstreamFrame = Buffer | { error: ProtocolError };

/** The relay's view of a translator (see RelaySession's `translator` option). */
export interface FrameTranslator {
  /** The frame to send upstream for a client frame of this type (the same buffer when unchanged). */
  toUpstream(type: string, data: Buffer): UpstreamFrame;
  /** The frames to send the client for an upstream frame of this type: none (dropped), one, or more. */
  toClient(type: string, data: Buffer): Buffer | readonly Buffer[];
}

/** GA name → beta name of server events renamed with the same payload. */
const RENAMED_GA_TO_BETA: Record<string, string> = {
  'response.output_audio.delta': 'response.audio.delta',
  'response.output_audio.done': 'response.audio.done',
  'response.output_audio_transcript.delta': 'response.audio_transcript.delta',
  'response.output_audio_transcript.done': 'response.audio_transcript.done',
  'response.output_text.delta': 'response.text.delta',
  'response.output_text.done': 'response.text.done',
};
const RENAMED_BETA_TO_GA: Record<string, string> = Object.fromEntries(Object.entries(RENAMED_GA_TO_BETA).map(([ga, beta]) => [beta, ga]));

const NONE: readonly Buffer[] = [];

function parse(data: Buffer): JsonObject | null {
  try {
    const v: unknown = JSON.parse(data.toString('utf8'));
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

const encode = (event: JsonObject): Buffer => Buffer.from(JSON.stringify(event), 'utf8');

/**
 * The frame with its `type` value replaced by `to`, by splicing bytes; null when the type is not
 * where the prefix walk finds it (the caller then re-serialises the parsed event instead).
 *
 * A shorter type (GA → beta: `response.output_audio.delta` → `response.audio.delta`) is spliced
 * in place: the few bytes before it move right and the frame is returned as a view from there,
 * so the payload is neither copied nor allocated again. `data` must be the caller's own buffer
 * (the relay's copy of a received frame, read by nothing after this). A longer type needs room:
 * the frame is copied once.
 */
export function spliceType(data: Buffer, from: string, to: string): Buffer | null {
  const end = typeValueEnd(data);
  if (end < 0) return null;
  const fromLen = Buffer.byteLength(from);
  const start = end - fromLen - 1; // first byte of the value, after its opening quote
  const toLen = Buffer.byteLength(to);
  if (toLen <= fromLen) {
    const shift = fromLen - toLen;
    data.copyWithin(shift, 0, start);
    data.write(to, start + shift, 'utf8');
    return data.subarray(shift);
  }
  const out = Buffer.allocUnsafe(data.length - fromLen + toLen);
  data.copy(out, 0, 0, start);
  out.write(to, start, 'utf8');
  data.copy(out, start + toLen, end - 1);
  return out;
}

function renamed(data: Buffer, from: string, to: string): Buffer {
  const spliced = spliceType(data, from, to);
  if (spliced) return spliced;
  const event = parse(data);
  return event ? encode({ ...event, type: to }) : data;
}

export class DialectTranslator implements FrameTranslator {
  private readonly renames: Record<string, string>;

  constructor(
    readonly client: ApiDialect,
    readonly upstream: ApiDialect,
  ) {
    if (client === upstream) throw new Error('no translation needed between equal dialects');
    this.renames = upstream === 'ga' ? RENAMED_GA_TO_BETA : RENAMED_BETA_TO_GA;
  }

  toUpstream(type: string, data: Buffer): UpstreamFrame {
    // input_audio_buffer.append (the hot path) and every other event not listed are the same in both dialects.
    switch (type) {
      case 'session.update':
      case 'response.create':
      case 'conversation.item.create':
        break;
      case 'transcription_session.update':
        if (this.upstream === 'ga') {
          return this.refuse(parse(data), 'type', "'transcription_session.update' is a beta-only event and is not translated; open a GA transcription session instead.");
        }
        return data;
      default:
        return data;
    }
    const event = parse(data);
    if (!event) return data; // the upstream answers malformed events with its own error
    const to = this.upstream;
    try {
      if (type === 'session.update' && isObject(event.session)) return encode({ ...event, session: reshapeSession(event.session, to, 'client') });
      if (type === 'response.create' && isObject(event.response)) return encode({ ...event, response: reshapeResponse(event.response, to, 'client') });
      if (type === 'conversation.item.create' && isObject(event.item)) return encode({ ...event, item: reshapeItem(event.item, to, 'client') });
    } catch (err) {
      if (err instanceof Untranslatable) return this.refuse(event, err.param, err.message);
      throw err;
    }
    return data;
  }

  toClient(type: string, data: Buffer): Buffer | readonly Buffer[] {
    const rename = this.renames[type];
    if (rename !== undefined) return renamed(data, type, rename);
    switch (type) {
      case 'session.created':
      case 'session.updated':
      case 'response.created':
      case 'response.done':
      case 'response.output_item.added':
      case 'response.output_item.done':
      case 'response.content_part.added':
      case 'response.content_part.done':
      case 'conversation.item.created':
      case 'conversation.item.added':
      case 'conversation.item.done':
      case 'conversation.item.retrieved':
      case 'conversation.created':
        return this.reshapeServerEvent(type, data);
      default:
        return data;
    }
  }

  private reshapeServerEvent(type: string, data: Buffer): Buffer | readonly Buffer[] {
    const event = parse(data);
    if (!event) return data;
    const to = this.client;
    if (type === 'session.created' || type === 'session.updated') {
      return isObject(event.session) ? encode({ ...event, session: reshapeSession(event.session, to, 'server') }) : data;
    }
    if (type === 'response.created' || type === 'response.done') {
      return isObject(event.response) ? encode({ ...event, response: reshapeResponse(event.response, to, 'server') }) : data;
    }
    if (type === 'response.content_part.added' || type === 'response.content_part.done') {
      return isObject(event.part) ? encode({ ...event, part: reshapePart(event.part, to, 'server', 'part') }) : data;
    }
    if (type === 'conversation.created') return to === 'ga' ? NONE : data; // beta only
    const item = isObject(event.item) ? reshapeItem(event.item, to, 'server') : event.item;
    if (to === 'beta') {
      // GA announces an item twice (added, then done); beta once (created).
      if (type === 'conversation.item.done') return NONE;
      return encode({ ...event, type: type === 'conversation.item.added' ? 'conversation.item.created' : type, item });
    }
    if (type === 'conversation.item.created') {
      const added = encode({ ...event, type: 'conversation.item.added', item });
      // A beta item created complete (a committed user turn, a client's item) is also done in GA terms.
      if (isObject(item) && item.status === 'completed') return [added, encode({ ...event, type: 'conversation.item.done', event_id: `${String(event.event_id ?? 'event')}_done`, item })];
      return added;
    }
    return encode({ ...event, item });
  }

  private refuse(event: JsonObject | null, param: string, message: string): UpstreamFrame {
    const eventId = event && typeof event.event_id === 'string' ? event.event_id : null;
    return { error: { type: 'invalid_request_error', code: 'dialect_untranslatable', message, param, event_id: eventId } };
  }
}
