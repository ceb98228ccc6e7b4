/**
 * Beta ⇄ GA reshaping of the objects inside Realtime events: session objects (session.update,
 * session.created/updated, the mint endpoints), response parameters and response objects
 * (response.create, response.created/done), and conversation items (their content-part types).
 *
 * Every function returns a new object and leaves fields it does not know where they are, so a
 * field added by the provider later still reaches the other side. When a *client* asks for
 * something the target dialect has no way to express, the reshaping reports it (`Untranslatable`)
 * instead of silently dropping it; server-side objects are descriptive and such fields are
 * simply left out.
 */
import type { ApiDialect } from '../../config/config';

type Json = unknown;
export type JsonObject = Record<string, unknown>;

export function isObject(v: Json): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A client request the target dialect cannot carry: `param` names the field. */
export class Untranslatable extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
    this.name = 'Untranslatable';
  }
}

/** Whether a reshaping serves a client request (strict) or describes server state (lenient). */
export type Side = 'client' | 'server';

// ---- value conversions ------------------------------------------------------------------

const GA_FORMAT: Record<string, JsonObject> = {
  pcm16: { type: 'audio/pcm', rate: 24000 },
  g711_ulaw: { type: 'audio/pcmu' },
  g711_alaw: { type: 'audio/pcma' },
};

const formatToGa = (v: Json): Json => (typeof v === 'string' && GA_FORMAT[v] ? { ...GA_FORMAT[v] } : v);

function formatToBeta(v: Json, param: string, side: Side): Json {
  if (!isObject(v)) return v;
  if (v.type === 'audio/pcm' && (v.rate === undefined || v.rate === 24000)) return 'pcm16';
  if (v.type === 'audio/pcmu') return 'g711_ulaw';
  if (v.type === 'audio/pcma') return 'g711_alaw';
  if (side === 'client') throw new Untranslatable(param, `'${param}' ${JSON.stringify(v)} has no beta equivalent (beta takes 'pcm16' at 24 kHz, 'g711_ulaw' or 'g711_alaw').`);
  return v;
}

/** Beta ["text","audio"] (audio with its transcript) is GA ["audio"]; ["text"] stays. */
function modalitiesToGa(v: Json): Json {
  if (!Array.isArray(v)) return v;
  if (v.includes('audio')) return ['audio'];
  return v.includes('text') ? ['text'] : v;
}
const modalitiesToBeta = (v: Json): Json => (Array.isArray(v) && v.includes('audio') ? ['text', 'audio'] : v);

// ---- field moves ------------------------------------------------------------------------

interface Move {
  beta: string[];
  ga: string[];
  toGa?: (v: Json) => Json;
  toBeta?: (v: Json, param: string, side: Side) => Json;
}

/** Where each session setting lives in either dialect (same table as auth/locked-session.ts). */
const SESSION_MOVES: Move[] = [
  { beta: ['modalities'], ga: ['output_modalities'], toGa: modalitiesToGa, toBeta: modalitiesToBeta },
  { beta: ['voice'], ga: ['audio', 'output', 'voice'] },
  { beta: ['speed'], ga: ['audio', 'output', 'speed'] },
  { beta: ['output_audio_format'], ga: ['audio', 'output', 'format'], toGa: formatToGa, toBeta: formatToBeta },
  { beta: ['input_audio_format'], ga: ['audio', 'input', 'format'], toGa: formatToGa, toBeta: formatToBeta },
  { beta: ['turn_detection'], ga: ['audio', 'input', 'turn_detection'] },
  { beta: ['input_audio_transcription'], ga: ['audio', 'input', 'transcription'] },
  { beta: ['input_audio_noise_reduction'], ga: ['audio', 'input', 'noise_reduction'] },
  { beta: ['max_response_output_tokens'], ga: ['max_output_tokens'] },
];

/** `response.create`'s `response` and the response object: the output settings only. */
const RESPONSE_MOVES: Move[] = [
  { beta: ['modalities'], ga: ['output_modalities'], toGa: modalitiesToGa, toBeta: modalitiesToBeta },
  { beta: ['voice'], ga: ['audio', 'output', 'voice'] },
  { beta: ['output_audio_format'], ga: ['audio', 'output', 'format'], toGa: formatToGa, toBeta: formatToBeta },
];

/**
 * Beta settings GA dropped. GA has no sampling temperature: the request goes on without it
 * rather than failing, since a beta app sends it in nearly every session.update.
 */
const BETA_ONLY = ['temperature'];

function take(o: JsonObject, path: string[]): Json {
  let cur: Json = o;
  for (const p of path.slice(0, -1)) {
    if (!isObject(cur)) return undefined;
    cur = cur[p];
  }
  if (!isObject(cur)) return undefined;
  const last = path[path.length - 1];
  if (!Object.prototype.hasOwnProperty.call(cur, last)) return undefined;
  const v = cur[last];
  delete cur[last];
  return v;
}

function put(o: JsonObject, path: string[], v: Json): void {
  let cur = o;
  for (const p of path.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as JsonObject;
  }
  cur[path[path.length - 1]] = v;
}

/** A copy two levels deep under `audio`, so moving fields never touches the caller's object. */
function copyWithAudio(o: JsonObject): JsonObject {
  const out: JsonObject = { ...o };
  if (isObject(o.audio)) {
    const audio: JsonObject = { ...o.audio };
    if (isObject(audio.input)) audio.input = { ...audio.input };
    if (isObject(audio.output)) audio.output = { ...audio.output };
    out.audio = audio;
  }
  return out;
}

function applyMoves(src: JsonObject, to: ApiDialect, moves: Move[], prefix: string, side: Side): JsonObject {
  const out = copyWithAudio(src);
  for (const m of moves) {
    const [from, dest] = to === 'ga' ? [m.beta, m.ga] : [m.ga, m.beta];
    const v = take(out, from);
    if (v === undefined) continue;
    const converted = to === 'ga' ? (m.toGa ? m.toGa(v) : v) : m.toBeta ? m.toBeta(v, `${prefix}.${from.join('.')}`, side) : v;
    put(out, dest, converted);
  }
  if (to === 'beta' && isObject(out.audio)) {
    // What is left under audio.* has no beta location.
    const rest: string[] = [];
    for (const dir of ['input', 'output']) {
      const d = out.audio[dir];
      if (isObject(d)) for (const k of Object.keys(d)) rest.push(`audio.${dir}.${k}`);
      else if (d !== undefined) rest.push(`audio.${dir}`);
    }
    for (const k of Object.keys(out.audio)) if (k !== 'input' && k !== 'output') rest.push(`audio.${k}`);
    if (rest.length > 0 && side === 'client') {
      throw new Untranslatable(`${prefix}.${rest[0]}`, `'${prefix}.${rest[0]}' is a GA setting with no beta equivalent.`);
    }
    delete out.audio;
  }
  return out;
}

function checkTools(tools: Json, prefix: string, to: ApiDialect, side: Side): void {
  if (to !== 'beta' || side !== 'client' || !Array.isArray(tools)) return;
  tools.forEach((t, i) => {
    if (isObject(t) && t.type !== undefined && t.type !== 'function') {
      throw new Untranslatable(`${prefix}.tools[${i}].type`, `'${prefix}.tools[${i}].type' ${JSON.stringify(t.type)} is a GA-only tool type; the upstream speaks the beta interface, which has function tools only.`);
    }
  });
}

/** GA-only session settings: harmless at their neutral value, untranslatable otherwise. */
const GA_ONLY_NEUTRAL: Record<string, (v: Json) => boolean> = {
  truncation: (v) => v === 'auto',
  prompt: (v) => v === null,
  reasoning: (v) => v === null,
};

/** A session object (or session patch) in the `to` dialect. */
export function reshapeSession(session: JsonObject, to: ApiDialect, side: Side, prefix = 'session'): JsonObject {
  const out = applyMoves(session, to, SESSION_MOVES, prefix, side);
  if (to === 'ga') {
    for (const k of BETA_ONLY) delete out[k];
    // GA requires the session type on every session.update.
    if (out.type === undefined) out.type = 'realtime';
  } else {
    if (out.type !== undefined && out.type !== 'realtime' && side === 'client') {
      throw new Untranslatable(`${prefix}.type`, `'${prefix}.type' ${JSON.stringify(out.type)} is a GA-only session type; the upstream speaks the beta interface, which has realtime sessions only.`);
    }
    delete out.type;
    for (const [k, neutral] of Object.entries(GA_ONLY_NEUTRAL)) {
      if (!(k in out)) continue;
      if (side === 'client' && !neutral(out[k])) {
        throw new Untranslatable(`${prefix}.${k}`, `'${prefix}.${k}' is a GA-only setting; the upstream speaks the beta interface, which has no equivalent.`);
      }
      delete out[k];
    }
    checkTools(out.tools, prefix, to, side);
  }
  return out;
}

/** `response.create`'s `response`, or a response object of response.created / response.done. */
export function reshapeResponse(response: JsonObject, to: ApiDialect, side: Side, prefix = 'response'): JsonObject {
  const out = applyMoves(response, to, RESPONSE_MOVES, prefix, side);
  if (to === 'ga') {
    for (const k of BETA_ONLY) delete out[k];
    // Beta response.create named it max_response_output_tokens; the response object already said max_output_tokens.
    const max = take(out, ['max_response_output_tokens']);
    if (max !== undefined) out.max_output_tokens = max;
  } else {
    if (side === 'client') {
      const max = take(out, ['max_output_tokens']);
      if (max !== undefined) out.max_response_output_tokens = max;
      for (const [k, neutral] of Object.entries(GA_ONLY_NEUTRAL)) {
        if (k in out && !neutral(out[k])) throw new Untranslatable(`${prefix}.${k}`, `'${prefix}.${k}' is a GA-only setting; the upstream speaks the beta interface, which has no equivalent.`);
        delete out[k];
      }
    }
    checkTools(out.tools, prefix, to, side);
  }
  if (Array.isArray(out.output)) out.output = out.output.map((item) => (isObject(item) ? reshapeItem(item, to, side, `${prefix}.output`) : item));
  if (Array.isArray(out.input)) out.input = out.input.map((item, i) => (isObject(item) ? reshapeItem(item, to, side, `${prefix}.input[${i}]`) : item));
  return out;
}

/** Assistant content-part types: beta `text` / `audio`, GA `output_text` / `output_audio`. */
const PART_TO_GA: Record<string, string> = { text: 'output_text', audio: 'output_audio' };
const PART_TO_BETA: Record<string, string> = { output_text: 'text', output_audio: 'audio' };

/** A content part (an item's, or response.content_part.*'s `part`). */
export function reshapePart(part: JsonObject, to: ApiDialect, side: Side, param: string): JsonObject {
  const type = typeof part.type === 'string' ? part.type : '';
  if (to === 'beta' && type === 'input_image' && side === 'client') {
    throw new Untranslatable(`${param}.type`, `'${param}.type' 'input_image': the upstream speaks the beta interface, whose models take no images.`);
  }
  const mapped = (to === 'ga' ? PART_TO_GA : PART_TO_BETA)[type];
  return mapped ? { ...part, type: mapped } : part;
}

/** A conversation item: its content-part types. Other item types (function calls) are the same in both. */
export function reshapeItem(item: JsonObject, to: ApiDialect, side: Side, param = 'item'): JsonObject {
  if (!Array.isArray(item.content)) {
    if (to === 'beta' && side === 'client' && typeof item.type === 'string' && item.type.startsWith('mcp_')) {
      throw new Untranslatable(`${param}.type`, `'${param}.type' '${item.type}' is a GA-only item type (MCP); the upstream speaks the beta interface.`);
    }
    return item;
  }
  // Only assistant parts were renamed; user parts (input_text, input_audio) are the same.
  const assistant = item.role === 'assistant' || item.role === undefined;
  return {
    ...item,
    content: item.content.map((p, i) => (isObject(p) && (assistant || p.type === 'input_image') ? reshapePart(p, to, side, `${param}.content[${i}]`) : p)),
  };
}
