/**
 * Session settings fixed by whoever minted an ephemeral key.
 *
 * Mint requests arrive in either dialect (beta `/v1/realtime/sessions` puts fields at the top
 * level; GA `/v1/realtime/client_secrets` nests audio settings under `session.audio`), and the
 * upstream speaks one dialect chosen by configuration. So the key carries a *canonical* form
 * (flat, beta field names, except `output_modalities` with GA meaning) and is rendered into the
 * upstream's dialect only when applied. Equality is checked on the canonical form, so a client
 * repeating a locked value in either dialect's shape is accepted.
 *
 * Mapping (beta ⇄ GA):
 *   voice ⇄ audio.output.voice, speed ⇄ audio.output.speed, output_audio_format ⇄ audio.output.format,
 *   input_audio_format ⇄ audio.input.format, turn_detection ⇄ audio.input.turn_detection,
 *   input_audio_transcription ⇄ audio.input.transcription,
 *   input_audio_noise_reduction ⇄ audio.input.noise_reduction,
 *   max_response_output_tokens ⇄ max_output_tokens, modalities ⇄ output_modalities
 *   (beta ["text","audio"] is GA ["audio"]: audio with its transcript), formats
 *   pcm16 ⇄ {type:"audio/pcm",rate:24000}, g711_ulaw ⇄ {type:"audio/pcmu"}, g711_alaw ⇄ {type:"audio/pcma"}.
 * `temperature` exists only in beta and `truncation`/`prompt` only in GA: they are dropped when
 * rendering for the other dialect but stay locked. `model` is locked but never sent in the
 * session.update: the relay enforces it by dialling upstream with `?model=<principal.model>`.
 */
import type { LockedSessionConfig } from './principal';

export type SessionDialect = 'ga' | 'beta';
type Json = unknown;
type JsonObject = Record<string, unknown>;

export interface LockedFieldError {
  code: 'locked_session_field';
  message: string;
  param: string;
}

interface FieldSpec {
  key: string;
  beta?: string[];
  ga?: string[];
  fromBeta?: (v: Json) => Json;
  toBeta?: (v: Json) => Json;
  fromGa?: (v: Json) => Json;
  toGa?: (v: Json) => Json;
}

const GA_FORMAT: Record<string, JsonObject> = {
  pcm16: { type: 'audio/pcm', rate: 24000 },
  g711_ulaw: { type: 'audio/pcmu' },
  g711_alaw: { type: 'audio/pcma' },
};

function formatFromGa(v: Json): Json {
  if (!isObject(v)) return v;
  if (v.type === 'audio/pcm' && (v.rate === undefined || v.rate === 24000)) return 'pcm16';
  if (v.type === 'audio/pcmu') return 'g711_ulaw';
  if (v.type === 'audio/pcma') return 'g711_alaw';
  return v;
}
const formatToGa = (v: Json): Json => (typeof v === 'string' && GA_FORMAT[v] ? { ...GA_FORMAT[v] } : v);

function modalitiesFromBeta(v: Json): Json {
  if (!Array.isArray(v)) return v;
  if (v.includes('audio')) return ['audio'];
  if (v.includes('text')) return ['text'];
  return v;
}
function modalitiesToBeta(v: Json): Json {
  if (!Array.isArray(v)) return v;
  if (v.includes('audio')) return ['text', 'audio'];
  return v;
}

const FIELDS: FieldSpec[] = [
  { key: 'model', beta: ['model'], ga: ['model'] },
  { key: 'instructions', beta: ['instructions'], ga: ['instructions'] },
  { key: 'voice', beta: ['voice'], ga: ['audio', 'output', 'voice'] },
  { key: 'tools', beta: ['tools'], ga: ['tools'] },
  { key: 'tool_choice', beta: ['tool_choice'], ga: ['tool_choice'] },
  { key: 'output_modalities', beta: ['modalities'], ga: ['output_modalities'], fromBeta: modalitiesFromBeta, toBeta: modalitiesToBeta },
  { key: 'turn_detection', beta: ['turn_detection'], ga: ['audio', 'input', 'turn_detection'] },
  { key: 'input_audio_transcription', beta: ['input_audio_transcription'], ga: ['audio', 'input', 'transcription'] },
  { key: 'input_audio_noise_reduction', beta: ['input_audio_noise_reduction'], ga: ['audio', 'input', 'noise_reduction'] },
  { key: 'input_audio_format', beta: ['input_audio_format'], ga: ['audio', 'input', 'format'], fromGa: formatFromGa, toGa: formatToGa },
  { key: 'output_audio_format', beta: ['output_audio_format'], ga: ['audio', 'output', 'format'], fromGa: formatFromGa, toGa: formatToGa },
  { key: 'speed', beta: ['speed'], ga: ['audio', 'output', 'speed'] },
  { key: 'temperature', beta: ['temperature'] },
  { key: 'max_response_output_tokens', beta: ['max_response_output_tokens'], ga: ['max_output_tokens'] },
  { key: 'tracing', beta: ['tracing'], ga: ['tracing'] },
  { key: 'include', beta: ['include'], ga: ['include'] },
  { key: 'truncation', ga: ['truncation'] },
  { key: 'prompt', ga: ['prompt'] },
];

/** Every canonical key a minted configuration may lock. */
export const LOCKABLE_FIELDS: readonly string[] = FIELDS.map((f) => f.key);

function isObject(v: Json): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getPath(o: JsonObject, path: string[]): Json {
  let cur: Json = o;
  for (const p of path) {
    if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, p)) return undefined;
    cur = cur[p];
  }
  return cur;
}

function setPath(o: JsonObject, path: string[], value: Json): void {
  let cur = o;
  for (const p of path.slice(0, -1)) {
    if (!isObject(cur[p])) cur[p] = {};
    cur = cur[p] as JsonObject;
  }
  cur[path[path.length - 1]] = value;
}

/** Paths a session object may hold besides lockable fields; they are never locked. */
const NEUTRAL_KEYS = new Set(['type', 'object', 'id', 'expires_at', 'client_secret']);

export interface ReadSession {
  /** Canonical key → value, and the path the value was found at (for error messages). */
  fields: Map<string, { value: Json; path: string }>;
  /** Paths the reader did not recognise, e.g. `audio.output.pitch`. */
  unknown: string[];
}

/**
 * Reads a session object (or a `response.create` response object) of either dialect into
 * canonical fields. `dialect` restricts the reading to one shape; without it both are read and
 * the GA location wins when a field appears in both.
 */
export function readSessionFields(session: JsonObject, dialect?: SessionDialect): ReadSession {
  const fields = new Map<string, { value: Json; path: string }>();
  const known = new Set<string>();
  for (const f of FIELDS) {
    for (const d of ['beta', 'ga'] as const) {
      const path = f[d];
      if (!path || (dialect && dialect !== d)) continue;
      known.add(path.join('.'));
      const raw = getPath(session, path);
      if (raw === undefined) continue;
      const convert = d === 'beta' ? f.fromBeta : f.fromGa;
      fields.set(f.key, { value: convert ? convert(raw) : raw, path: path.join('.') });
    }
  }
  const unknown: string[] = [];
  const walk = (o: JsonObject, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (known.has(path) || (!prefix && NEUTRAL_KEYS.has(k))) continue;
      const isContainer = (!dialect || dialect === 'ga') && (path === 'audio' || path === 'audio.input' || path === 'audio.output');
      if (isContainer && isObject(v)) walk(v, path);
      else unknown.push(path);
    }
  };
  walk(session, '');
  return { fields, unknown };
}

/** The canonical locked configuration of a session object of either dialect. */
export function canonicalSession(session: JsonObject, dialect?: SessionDialect): LockedSessionConfig {
  const out: LockedSessionConfig = {};
  for (const [k, { value }] of readSessionFields(session, dialect).fields) out[k] = value;
  return out;
}

/** Renders a canonical configuration as a session object of `dialect` (GA gets `type: "realtime"`). */
export function renderSession(locked: LockedSessionConfig, dialect: SessionDialect, opts: { includeModel?: boolean } = {}): JsonObject {
  const canonical = canonicalSession(locked);
  const out: JsonObject = dialect === 'ga' ? { type: 'realtime' } : {};
  for (const f of FIELDS) {
    if (f.key === 'model' && !opts.includeModel) continue;
    const path = f[dialect];
    if (!path || !(f.key in canonical)) continue;
    const convert = dialect === 'beta' ? f.toBeta : f.toGa;
    const v = canonical[f.key];
    setPath(out, path, convert ? convert(v) : v);
  }
  return out;
}

/** The `session.update` the relay sends upstream right after connecting, before any client frame. */
export function lockedSessionUpdate(locked: LockedSessionConfig, dialect: SessionDialect): { type: 'session.update'; session: JsonObject } {
  return { type: 'session.update', session: renderSession(locked, dialect) };
}

function stableJson(v: Json): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (isObject(v)) {
    const keys = Object.keys(v).filter((k) => v[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson(v[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

/**
 * Checks a client event against the locked configuration. `session.update` and, because a
 * response can override instructions, voice, tools and the like for itself, `response.create`.
 * A locked field sent with a different value is refused; the same value (in either dialect's
 * shape) is fine; objects compare whole, so a partial `turn_detection` counts as a change since
 * upstream would replace the locked one with it. Returns null when the event may be forwarded.
 */
export function checkSessionUpdate(locked: LockedSessionConfig | undefined, clientEvent: unknown): LockedFieldError | null {
  if (!locked || !isObject(clientEvent)) return null;
  const container = clientEvent.type === 'session.update' ? 'session' : clientEvent.type === 'response.create' ? 'response' : null;
  if (!container) return null;
  const patch = clientEvent[container];
  if (!isObject(patch)) return null;
  const canonical = canonicalSession(locked);
  // Each dialect's locations are checked separately: reading both at once would let a matching
  // GA value hide a different beta one (`voice` beside `audio.output.voice`) from the check.
  for (const dialect of ['beta', 'ga'] as const) {
    for (const [key, { value, path }] of readSessionFields(patch, dialect).fields) {
      if (!(key in canonical)) continue;
      if (stableJson(value) === stableJson(canonical[key])) continue;
      const param = `${container}.${path}`;
      return {
        code: 'locked_session_field',
        message: `'${param}' is fixed by the ephemeral key this session was opened with and cannot be changed.`,
        param,
      };
    }
  }
  return null;
}

/**
 * Locked instructions would be moot if the client could add a system message of its own: the
 * model weighs it like instructions. So with instructions locked, a `conversation.item.create`
 * of a system message is refused, and so is one inside `response.create`'s `input` (an
 * out-of-band response's own context). User and assistant messages are the conversation.
 *
 * The check is an allow-list: an item carrying any `role` other than exactly `user` or
 * `assistant` is refused — `system`, `developer` (the Responses API's name for it), and every
 * other spelling (`SYSTEM`, `System `), since the relay cannot know how leniently an upstream
 * reads roles. Items without a role (function call outputs, item references) pass.
 */
export function checkSystemMessages(locked: LockedSessionConfig | undefined, clientEvent: unknown): LockedFieldError | null {
  if (!instructionsLocked(locked) || !isObject(clientEvent)) return null;
  let param: string | null = null;
  if (clientEvent.type === 'conversation.item.create') {
    if (isSystemMessage(clientEvent.item)) param = 'item.role';
  } else if (clientEvent.type === 'response.create' && isObject(clientEvent.response) && Array.isArray(clientEvent.response.input)) {
    const i = clientEvent.response.input.findIndex(isSystemMessage);
    if (i >= 0) param = `response.input[${i}].role`;
  }
  if (!param) return null;
  return {
    code: 'locked_session_field',
    message: `'${param}': system messages are not accepted in this session; its instructions are fixed by the ephemeral key it was opened with.`,
    param,
  };
}

export function instructionsLocked(locked: LockedSessionConfig | undefined): locked is LockedSessionConfig {
  return locked !== undefined && 'instructions' in canonicalSession(locked);
}

const CONVERSATION_ROLES: ReadonlySet<unknown> = new Set(['user', 'assistant']);

function isSystemMessage(item: unknown): boolean {
  return isObject(item) && Object.prototype.hasOwnProperty.call(item, 'role') && !CONVERSATION_ROLES.has(item.role);
}

/**
 * A stored prompt (`session.prompt`, `response.prompt`) carries instructions (and may carry
 * tools) of its own, set outside the session: with instructions or tools locked, a client's
 * prompt would replace them. So it is refused unless the key locked that very prompt (which
 * checkSessionUpdate compares). `prompt: null` clears nothing the key set and passes.
 */
export function checkPromptOverride(locked: LockedSessionConfig | undefined, clientEvent: unknown): LockedFieldError | null {
  if (!locked || !isObject(clientEvent)) return null;
  const canonical = canonicalSession(locked);
  if ('prompt' in canonical || !('instructions' in canonical || 'tools' in canonical)) return null;
  const container = clientEvent.type === 'session.update' ? 'session' : clientEvent.type === 'response.create' ? 'response' : null;
  if (!container) return null;
  const patch = clientEvent[container];
  if (!isObject(patch) || patch.prompt === undefined || patch.prompt === null) return null;
  const param = `${container}.prompt`;
  return {
    code: 'locked_session_field',
    message: `'${param}': stored prompts are not accepted in this session; its instructions are fixed by the ephemeral key it was opened with.`,
    param,
  };
}

/**
 * `transcription_session.update` configures a transcription session; on a beta upstream it is
 * applied like `session.update`, so on a conversation session it is a second way to change the
 * locked configuration. Relay sessions are conversation sessions, so on a locked one it is refused.
 */
export function checkTranscriptionSessionUpdate(locked: LockedSessionConfig | undefined): LockedFieldError | null {
  if (!locked) return null;
  return {
    code: 'locked_session_field',
    message: "'transcription_session.update' is not accepted in this session: it is a conversation session whose configuration is fixed by the ephemeral key it was opened with; use session.update.",
    param: 'type',
  };
}

/** The `error` event the relay sends the client instead of forwarding a refused event. */
export function lockedFieldErrorEvent(err: LockedFieldError, eventId: string, clientEventId?: string): JsonObject {
  return {
    type: 'error',
    event_id: eventId,
    error: { type: 'invalid_request_error', code: err.code, message: err.message, param: err.param, event_id: clientEventId ?? null },
  };
}
