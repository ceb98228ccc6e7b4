/**
 * What differs between the beta (`OpenAI-Beta: realtime=v1`) and GA dialects: session shape,
 * event names, content-part types. Everything else in the simulator is dialect-neutral.
 */
import type { AudioFormat } from './audio';
import { arr, isObject, obj, str, type Json, type JsonObject } from './json';
import type { Dialect } from './types';

export const DEFAULT_INSTRUCTIONS =
  'Your knowledge cutoff is 2023-10. You are a helpful, witty, and friendly AI. Act like a human, ' +
  'but remember that you aren\'t a human and that you can\'t do human things in the real world.';

/** Upstream limits: 30 minutes for beta sessions, 60 for GA. */
export function defaultMaxSessionMs(dialect: Dialect): number {
  return (dialect === 'beta' ? 30 : 60) * 60_000;
}

export interface EventNames {
  itemCreated: string[];
  itemDone: string | null;
  audioDelta: string;
  audioDone: string;
  transcriptDelta: string;
  transcriptDone: string;
  textDelta: string;
  textDone: string;
  assistantAudioPart: string;
  assistantTextPart: string;
}

const BETA_NAMES: EventNames = {
  itemCreated: ['conversation.item.created'],
  itemDone: null,
  audioDelta: 'response.audio.delta',
  audioDone: 'response.audio.done',
  transcriptDelta: 'response.audio_transcript.delta',
  transcriptDone: 'response.audio_transcript.done',
  textDelta: 'response.text.delta',
  textDone: 'response.text.done',
  assistantAudioPart: 'audio',
  assistantTextPart: 'text',
};

const GA_NAMES: EventNames = {
  itemCreated: ['conversation.item.added'],
  itemDone: 'conversation.item.done',
  audioDelta: 'response.output_audio.delta',
  audioDone: 'response.output_audio.done',
  transcriptDelta: 'response.output_audio_transcript.delta',
  transcriptDone: 'response.output_audio_transcript.done',
  textDelta: 'response.output_text.delta',
  textDone: 'response.output_text.done',
  assistantAudioPart: 'output_audio',
  assistantTextPart: 'output_text',
};

export function eventNames(d: Dialect): EventNames {
  return d === 'beta' ? BETA_NAMES : GA_NAMES;
}

export const CLIENT_EVENTS: Record<Dialect, string[]> = {
  beta: [
    'session.update', 'transcription_session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit',
    'input_audio_buffer.clear', 'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete',
    'conversation.item.retrieve', 'response.create', 'response.cancel', 'output_audio_buffer.clear',
  ],
  ga: [
    'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear',
    'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve',
    'response.create', 'response.cancel', 'output_audio_buffer.clear',
  ],
};

/** Fields session.update accepts; anything else is `unknown_parameter`, as upstream answers a dialect mix-up. */
export const SESSION_FIELDS: Record<Dialect, Set<string>> = {
  beta: new Set([
    'model', 'modalities', 'instructions', 'voice', 'input_audio_format', 'output_audio_format',
    'input_audio_transcription', 'input_audio_noise_reduction', 'turn_detection', 'tools', 'tool_choice',
    'temperature', 'max_response_output_tokens', 'speed', 'tracing', 'include',
  ]),
  ga: new Set([
    'type', 'model', 'output_modalities', 'instructions', 'audio', 'tools', 'tool_choice', 'max_output_tokens',
    'tracing', 'truncation', 'prompt', 'include',
  ]),
};

export function defaultServerVad(dialect: Dialect): JsonObject {
  const td: JsonObject = { type: 'server_vad', threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 200 };
  if (dialect === 'ga') td.idle_timeout_ms = null;
  td.create_response = true;
  td.interrupt_response = true;
  return td;
}

function defaultSemanticVad(): JsonObject {
  return { type: 'semantic_vad', eagerness: 'auto', create_response: true, interrupt_response: true };
}

/** Fills a client's partial turn_detection the way upstream echoes it back. */
export function normalizeTurnDetection(dialect: Dialect, td: Json | undefined): Json | undefined {
  if (!isObject(td)) return td;
  const type = str(td, 'type') ?? 'server_vad';
  const defaults = type === 'semantic_vad' ? defaultSemanticVad() : defaultServerVad(dialect);
  return { ...defaults, ...td, type };
}

export function defaultSession(dialect: Dialect, model: string, id: string, expiresAt: number): JsonObject {
  if (dialect === 'beta') {
    return {
      id,
      object: 'realtime.session',
      model,
      expires_at: expiresAt,
      modalities: ['text', 'audio'],
      instructions: DEFAULT_INSTRUCTIONS,
      voice: 'alloy',
      input_audio_format: 'pcm16',
      output_audio_format: 'pcm16',
      input_audio_transcription: null,
      input_audio_noise_reduction: null,
      turn_detection: defaultServerVad('beta'),
      tools: [],
      tool_choice: 'auto',
      temperature: 0.8,
      max_response_output_tokens: 'inf',
      speed: 1,
      tracing: null,
      include: null,
    };
  }
  return {
    type: 'realtime',
    object: 'realtime.session',
    id,
    model,
    output_modalities: ['audio'],
    instructions: DEFAULT_INSTRUCTIONS,
    tools: [],
    tool_choice: 'auto',
    max_output_tokens: 'inf',
    tracing: null,
    truncation: 'auto',
    prompt: null,
    expires_at: expiresAt,
    audio: {
      input: {
        format: { type: 'audio/pcm', rate: 24000 },
        transcription: null,
        noise_reduction: null,
        turn_detection: defaultServerVad('ga'),
      },
      output: { format: { type: 'audio/pcm', rate: 24000 }, voice: 'alloy', speed: 1 },
    },
    include: null,
  };
}

const GA_FORMATS: Record<string, AudioFormat> = {
  'audio/pcm': 'pcm16',
  'audio/pcmu': 'g711_ulaw',
  'audio/pcma': 'g711_alaw',
};
const BETA_FORMATS = new Set<string>(['pcm16', 'g711_ulaw', 'g711_alaw']);

/** Dialect-neutral reading of a session object. */
export interface SessionView {
  outputModalities: string[];
  instructions: string;
  tools: JsonObject[];
  toolChoice: Json;
  voice: string;
  inputFormat: AudioFormat;
  outputFormat: AudioFormat;
  turnDetection: JsonObject | null;
  transcription: JsonObject | null;
}

function stringList(v: Json[] | undefined, fallback: string[]): string[] {
  return v ? v.filter((x): x is string => typeof x === 'string') : fallback;
}

function gaFormat(f: Json | undefined): AudioFormat {
  if (isObject(f)) return GA_FORMATS[str(f, 'type') ?? ''] ?? 'pcm16';
  return 'pcm16';
}

export function readSession(dialect: Dialect, s: JsonObject): SessionView {
  const tools = (arr(s, 'tools') ?? []).filter(isObject);
  const common = { instructions: str(s, 'instructions') ?? '', tools, toolChoice: s.tool_choice ?? 'auto' };
  if (dialect === 'beta') {
    const inF = str(s, 'input_audio_format') ?? 'pcm16';
    const outF = str(s, 'output_audio_format') ?? 'pcm16';
    return {
      ...common,
      outputModalities: stringList(arr(s, 'modalities'), ['text', 'audio']),
      voice: str(s, 'voice') ?? 'alloy',
      inputFormat: BETA_FORMATS.has(inF) ? (inF as AudioFormat) : 'pcm16',
      outputFormat: BETA_FORMATS.has(outF) ? (outF as AudioFormat) : 'pcm16',
      turnDetection: obj(s, 'turn_detection') ?? null,
      transcription: obj(s, 'input_audio_transcription') ?? null,
    };
  }
  const input = obj(obj(s, 'audio'), 'input');
  const output = obj(obj(s, 'audio'), 'output');
  return {
    ...common,
    outputModalities: stringList(arr(s, 'output_modalities'), ['audio']),
    voice: str(output, 'voice') ?? 'alloy',
    inputFormat: gaFormat(input?.format),
    outputFormat: gaFormat(output?.format),
    turnDetection: obj(input, 'turn_detection') ?? null,
    transcription: obj(input, 'transcription') ?? null,
  };
}

export interface ParamError {
  code: string;
  message: string;
  param: string;
}

/**
 * Validates a session patch. Returns the first problem, phrased like upstream, or null.
 * Also normalizes turn_detection in place so the echo carries upstream's defaults.
 */
export function validateSessionPatch(dialect: Dialect, patch: JsonObject, prefix = 'session'): ParamError | null {
  const at = (name: string): string => (prefix === '' ? name : `${prefix}.${name}`);
  for (const k of Object.keys(patch)) {
    if (!SESSION_FIELDS[dialect].has(k)) {
      return { code: 'unknown_parameter', message: `Unknown parameter: '${at(k)}'.`, param: at(k) };
    }
  }
  const bad = (param: string, value: Json | undefined, expected: string): ParamError => ({
    code: 'invalid_value',
    message: `Invalid value: ${JSON.stringify(value ?? null)}. Supported values are: ${expected}.`,
    param: at(param),
  });
  if (dialect === 'beta') {
    const mods = patch.modalities;
    if (mods !== undefined) {
      const list = Array.isArray(mods) ? mods : null;
      const ok = list !== null && list.length > 0 && list.every((m) => m === 'text' || m === 'audio') && list.includes('text');
      if (!ok) return bad('modalities', mods, "['text'] and ['text', 'audio']");
    }
    for (const f of ['input_audio_format', 'output_audio_format']) {
      const v = patch[f];
      if (v !== undefined && !(typeof v === 'string' && BETA_FORMATS.has(v))) return bad(f, v, "'pcm16', 'g711_ulaw', and 'g711_alaw'");
    }
    const t = patch.temperature;
    if (t !== undefined && !(typeof t === 'number' && t >= 0.6 && t <= 1.2)) {
      return { code: 'decimal_out_of_range', message: `Invalid '${at('temperature')}': decimal out of range. Expected a value between 0.6 and 1.2, but got ${JSON.stringify(t)} instead.`, param: at('temperature') };
    }
    const tdErr = checkTurnDetection(patch.turn_detection, 'turn_detection', bad);
    if (tdErr) return tdErr;
    if (patch.turn_detection !== undefined) patch.turn_detection = normalizeTurnDetection(dialect, patch.turn_detection) ?? null;
    return null;
  }
  if (patch.type !== undefined && patch.type !== 'realtime') return bad('type', patch.type, "'realtime'");
  const mods = patch.output_modalities;
  if (mods !== undefined) {
    const ok = Array.isArray(mods) && mods.length === 1 && (mods[0] === 'audio' || mods[0] === 'text');
    if (!ok) return bad('output_modalities', mods, "['text'] and ['audio']");
  }
  const audio = patch.audio;
  if (audio !== undefined) {
    if (!isObject(audio)) return bad('audio', audio, 'an object');
    for (const dir of ['input', 'output'] as const) {
      const d = obj(audio, dir);
      const fmt = d?.format;
      if (fmt !== undefined && !(isObject(fmt) && (str(fmt, 'type') ?? '') in GA_FORMATS)) {
        return bad(`audio.${dir}.format.type`, isObject(fmt) ? fmt.type : fmt, "'audio/pcm', 'audio/pcmu', and 'audio/pcma'");
      }
    }
    const input = obj(audio, 'input');
    if (input) {
      const tdErr = checkTurnDetection(input.turn_detection, 'audio.input.turn_detection', bad);
      if (tdErr) return tdErr;
      if (input.turn_detection !== undefined) input.turn_detection = normalizeTurnDetection(dialect, input.turn_detection) ?? null;
    }
  }
  return null;
}

function checkTurnDetection(
  td: Json | undefined,
  param: string,
  bad: (param: string, value: Json | undefined, expected: string) => ParamError,
): ParamError | null {
  if (td === undefined || td === null) return null;
  if (!isObject(td)) return bad(param, td, 'an object or null');
  const type = td.type;
  if (type !== undefined && type !== 'server_vad' && type !== 'semantic_vad') return bad(`${param}.type`, type, "'server_vad' and 'semantic_vad'");
  return null;
}

export function gaFormatObject(f: AudioFormat): JsonObject {
  if (f === 'pcm16') return { type: 'audio/pcm', rate: 24000 };
  return { type: f === 'g711_ulaw' ? 'audio/pcmu' : 'audio/pcma' };
}
