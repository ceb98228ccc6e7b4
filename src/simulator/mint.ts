/** Ephemeral-key endpoints: beta `/realtime/sessions`, `/realtime/transcription_sessions`, GA `/realtime/client_secrets`. */
import { defaultServerVad, defaultSession, validateSessionPatch } from './dialect';
import { randomId } from './ids';
import { clone, isObject, mergeSession, num, obj, str, type JsonObject } from './json';
import type { Dialect } from './types';

export interface MintedKey {
  value: string;
  expiresAtMs: number;
  model: string;
  dialect: Dialect;
  /** Session config the key was minted with; it becomes the initial config of sessions it opens. */
  config: JsonObject;
}

export interface MintContext {
  now(): number;
  isKnownModel(model: string): boolean;
  register(key: MintedKey): void;
}

export interface HttpAnswer {
  status: number;
  body: JsonObject;
}

export function apiError(status: number, message: string, type: string, code: string | null, param: string | null = null): HttpAnswer {
  return { status, body: { error: { message, type, param, code } } };
}

const bad = (message: string, code: string | null, param: string | null): HttpAnswer =>
  apiError(400, message, 'invalid_request_error', code, param);

function newKey(): string {
  return randomId('ek_sim', 32);
}

export const BETA_DEFAULT_MODEL = 'gpt-4o-realtime-preview-2025-06-03';
export const GA_DEFAULT_MODEL = 'gpt-realtime';
export const TRANSCRIBE_MODEL = 'gpt-4o-transcribe';
/** Beta ephemeral keys live about a minute. */
const BETA_KEY_TTL_S = 60;

export function mintBetaSession(body: JsonObject, ctx: MintContext): HttpAnswer {
  const model = str(body, 'model') ?? BETA_DEFAULT_MODEL;
  if (!ctx.isKnownModel(model)) return bad(`Invalid value: '${model}'. This model does not exist or you do not have access to it.`, 'invalid_value', 'model');
  const config = clone(body);
  delete config.model;
  delete config.client_secret;
  const raw = clone(config);
  const err = validateSessionPatch('beta', config, '');
  if (err) return bad(err.message, err.code, err.param);
  const nowS = Math.floor(ctx.now() / 1000);
  const value = newKey();
  ctx.register({ value, expiresAtMs: (nowS + BETA_KEY_TTL_S) * 1000, model, dialect: 'beta', config: raw });
  const session = mergeSession(defaultSession('beta', model, randomId('sess'), nowS + 30 * 60), config);
  return { status: 200, body: { ...session, client_secret: { value, expires_at: nowS + BETA_KEY_TTL_S } } };
}

const TRANSCRIPTION_FIELDS = new Set(['input_audio_format', 'input_audio_transcription', 'turn_detection', 'input_audio_noise_reduction', 'include', 'client_secret']);

export function mintTranscriptionSession(body: JsonObject, ctx: MintContext): HttpAnswer {
  for (const k of Object.keys(body)) {
    if (!TRANSCRIPTION_FIELDS.has(k)) return bad(`Unknown parameter: '${k}'.`, 'unknown_parameter', k);
  }
  const config = clone(body);
  delete config.client_secret;
  delete config.include;
  config.input_audio_transcription = obj(config, 'input_audio_transcription') ?? { model: TRANSCRIBE_MODEL, language: null, prompt: '' };
  config.modalities = ['text'];
  const raw = clone(config);
  const err = validateSessionPatch('beta', config, '');
  if (err) return bad(err.message, err.code, err.param);
  const nowS = Math.floor(ctx.now() / 1000);
  const value = newKey();
  ctx.register({ value, expiresAtMs: (nowS + BETA_KEY_TTL_S) * 1000, model: TRANSCRIBE_MODEL, dialect: 'beta', config: raw });
  return {
    status: 200,
    body: {
      id: randomId('sess'),
      object: 'realtime.transcription_session',
      modalities: ['text'],
      input_audio_format: config.input_audio_format ?? 'pcm16',
      input_audio_transcription: config.input_audio_transcription ?? null,
      turn_detection: config.turn_detection === undefined ? defaultServerVad('beta') : config.turn_detection,
      input_audio_noise_reduction: config.input_audio_noise_reduction ?? null,
      client_secret: { value, expires_at: nowS + BETA_KEY_TTL_S },
    },
  };
}

export function mintClientSecret(body: JsonObject, ctx: MintContext): HttpAnswer {
  let seconds = 600;
  const ea = body.expires_after;
  if (ea !== undefined) {
    if (!isObject(ea)) return bad("Invalid type for 'expires_after': expected an object.", 'invalid_type', 'expires_after');
    const anchor = ea.anchor;
    if (anchor !== undefined && anchor !== 'created_at') {
      return bad(`Invalid value: ${JSON.stringify(anchor)}. Supported values are: 'created_at'.`, 'invalid_value', 'expires_after.anchor');
    }
    if (ea.seconds !== undefined) {
      const s = num(ea, 'seconds');
      if (s === undefined || !Number.isInteger(s)) {
        return bad("Invalid type for 'expires_after.seconds': expected an integer.", 'invalid_type', 'expires_after.seconds');
      }
      if (s > 7200) {
        return bad(`Invalid 'expires_after.seconds': integer above maximum value. Expected a value <= 7200, but got ${s} instead.`, 'integer_above_max_value', 'expires_after.seconds');
      }
      if (s < 10) {
        return bad(`Invalid 'expires_after.seconds': integer below minimum value. Expected a value >= 10, but got ${s} instead.`, 'integer_below_min_value', 'expires_after.seconds');
      }
      seconds = s;
    }
  }
  const requested = body.session;
  if (requested !== undefined && !isObject(requested)) return bad("Invalid type for 'session': expected an object.", 'invalid_type', 'session');
  const sessionIn = requested ?? {};
  const type = sessionIn.type ?? 'realtime';
  if (type !== 'realtime' && type !== 'transcription') {
    return bad(`Invalid value: ${JSON.stringify(type)}. Supported values are: 'realtime' and 'transcription'.`, 'invalid_value', 'session.type');
  }
  const model = str(sessionIn, 'model') ?? (type === 'realtime' ? GA_DEFAULT_MODEL : TRANSCRIBE_MODEL);
  if (type === 'realtime' && !ctx.isKnownModel(model)) {
    return bad(`Invalid value: '${model}'. This model does not exist or you do not have access to it.`, 'invalid_value', 'session.model');
  }
  const config = clone(sessionIn);
  delete config.model;
  delete config.type;
  const raw = clone(config);
  const err = validateSessionPatch('ga', config);
  if (err) return bad(err.message, err.code, err.param);
  const nowS = Math.floor(ctx.now() / 1000);
  const expiresAt = nowS + seconds;
  const value = newKey();
  ctx.register({ value, expiresAtMs: expiresAt * 1000, model, dialect: 'ga', config: raw });
  const session = mergeSession(defaultSession('ga', model, randomId('sess'), 0), config);
  session.type = type;
  return { status: 200, body: { value, expires_at: expiresAt, session } };
}
