/** One simulated Realtime session: the protocol state machine behind a single WebSocket. */
import { WebSocket, type RawData } from 'ws';
import { bytesPerMs, toneChunk, type AudioFormat } from './audio';
import {
  CLIENT_EVENTS, defaultMaxSessionMs, defaultSession, eventNames, gaFormatObject, readSession,
  validateSessionPatch, type EventNames, type SessionView,
} from './dialect';
import { hash32, randomId } from './ids';
import { arr, clone, isObject, mergeSession, num, obj, str, type Json, type JsonObject } from './json';
import type { Dialect, SimulatorFaults, SimulatorLogger, SimulatorStats } from './types';
import {
  IMAGE_TOKENS, addTokens, buildUsage, cachedTokens, inputAudioTokens, outputAudioTokens, textTokens,
  zeroTokens, type RealtimeUsage, type TokenCounts,
} from './usage';

/** What a session needs from the simulator that owns it. */
export interface SessionHost {
  readonly stats: SimulatorStats;
  readonly logger: SimulatorLogger;
  readonly audioChunkMs: number;
  readonly deltaIntervalMs: number;
  faults(): SimulatorFaults;
  random(): number;
  now(): number;
  recordClientEvent(connectionId: string, type: string, raw: string): void;
  /** Each server frame as sent, when the simulator was asked to keep them (tests). */
  recordServerEvent?(connectionId: string, type: string, raw: string): void;
  recordUsage(clientRequestId: string | undefined, usage: RealtimeUsage): void;
  rateLimitsAfter(totalTokens: number): JsonObject[];
  sessionClosed(session: SimulatedSession, code: number, reason: string, fromClient: boolean): void;
}

/**
 * The part of a `ws` WebSocket a session uses. A WebRTC call (src/simulator/webrtc) implements it
 * too, fanning one session out to its data channel and sideband sockets.
 */
export interface SessionSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code: number, reason: string): void;
  terminate(): void;
  on(event: 'message', listener: (data: RawData, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
}

export interface SessionInit {
  connectionId: string;
  dialect: Dialect;
  model: string;
  clientRequestId?: string;
  /** Config bound to the ephemeral key that opened the session, applied over the defaults. */
  initialConfig?: JsonObject;
  /**
   * Respond on each committed turn unless the config says otherwise. Off for WebSocket sessions
   * (see `autoRespond`); on for WebRTC calls, where upstream's server VAD is the only trigger.
   */
  autoRespond?: boolean;
}

interface ConvItem {
  item: JsonObject;
  tokens: TokenCounts;
  /** Audio duration, for truncate checks and re-billing. */
  audioMs: number;
}

interface ActiveResponse {
  id: string;
  stalled: boolean;
  finished: boolean;
  faults: SimulatorFaults;
  names: EventNames;
  outOfBand: boolean;
  kind: 'audio' | 'text' | 'function_call' | 'mcp';
  outputFormat: AudioFormat;
  voice: string;
  modalities: string[];
  metadata: Json;
  input: TokenCounts;
  cached: TokenCounts;
  item: ConvItem;
  /** Full planned output. */
  text: string;
  chunks: number;
  /** Progress, for partial usage on cancel. */
  sentText: string;
  sentAudioMs: number;
  deltas: number;
}

const REPLIES = [
  'Sure, I can help with that.',
  'That is a great question, let me think about it for a moment.',
  'Here is a short answer: yes, that should work fine.',
  'I am a simulated assistant, and this is my simulated reply.',
  'Thanks for asking! The weather in the simulator is always mild.',
  'Of course. Let me walk you through it step by step.',
  'Hmm, interesting. I would suggest trying it again later today.',
  'Absolutely. Anything else you would like to know?',
];

const MIN_COMMIT_MS = 100;
const BACKPRESSURE_BYTES = 1 << 20;

export class SimulatedSession {
  readonly sessionId = randomId('sess');
  readonly connectionId: string;
  readonly dialect: Dialect;
  readonly model: string;
  readonly clientRequestId: string | undefined;
  private readonly names: EventNames;
  private readonly conversationId = randomId('conv');
  private session: JsonObject;
  private items: ConvItem[] = [];
  private bufferBytes = 0;
  private speechItemId: string | null = null;
  /** Audio appended so far in the session, the timeline VAD timestamps refer to. */
  private audioCursorMs = 0;
  /**
   * Only an explicit `create_response: true` from the client turns on auto-responses on commit, so
   * the common "commit, then response.create" pattern never trips over a duplicate response.
   */
  private autoRespond = false;
  private active: ActiveResponse | null = null;
  private previousInput: TokenCounts | null = null;
  private serverClosing = false;
  private closed = false;
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(private readonly ws: SessionSocket, init: SessionInit, private readonly host: SessionHost) {
    this.connectionId = init.connectionId;
    this.autoRespond = init.autoRespond ?? false;
    this.dialect = init.dialect;
    this.model = init.model;
    this.clientRequestId = init.clientRequestId;
    this.names = eventNames(this.dialect);
    const maxMs = host.faults().sessionMaxMs ?? defaultMaxSessionMs(this.dialect);
    const expiresAt = Math.floor((host.now() + maxMs) / 1000);
    this.session = defaultSession(this.dialect, this.model, this.sessionId, expiresAt);
    if (init.initialConfig) {
      const normalized = clone(init.initialConfig);
      if (!validateSessionPatch(this.dialect, normalized)) {
        this.applyPatch(normalized);
        this.noteTurnDetection(init.initialConfig);
      }
    }
    this.expiryTimer = setTimeout(() => this.expire(maxMs), Math.min(maxMs, 2 ** 31 - 1));
    this.expiryTimer.unref();

    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('close', (code, reason) => this.onClose(code, reason.toString('utf8')));
    ws.on('error', (err) => host.logger.warn('simulator: socket error', this.connectionId, err.message));

    this.send('session.created', { session: clone(this.session) });
    if (this.dialect === 'beta') {
      this.send('conversation.created', { conversation: { id: this.conversationId, object: 'realtime.conversation' } });
    }
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Server-initiated close (stop, expiry, faults). */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.serverClosing = true;
    try {
      this.ws.close(code, reason);
    } catch {
      // Codes such as 1006 cannot be sent in a close frame; the closest honest thing is a drop.
      this.ws.terminate();
    }
  }

  terminate(): void {
    this.serverClosing = true;
    this.ws.terminate();
  }

  // ---------------------------------------------------------------------------------------------
  // Transport

  private send(type: string, body: JsonObject = {}): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    const raw = JSON.stringify({ type, event_id: randomId('event'), ...body });
    this.host.recordServerEvent?.(this.connectionId, type, raw);
    this.ws.send(raw);
  }

  private sendError(errType: string, code: string | null, message: string, param: string | null, clientEventId?: string): void {
    this.send('error', { error: { type: errType, code, message, param, event_id: clientEventId ?? null } });
  }

  private invalid(code: string, message: string, param: string | null, clientEventId?: string): void {
    this.sendError('invalid_request_error', code, message, param, clientEventId);
  }

  private onClose(code: number, reason: string): void {
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.active) this.active.finished = true;
    this.active = null;
    this.host.sessionClosed(this, code, reason, !this.serverClosing);
  }

  private expire(maxMs: number): void {
    const minutes = maxMs / 60_000;
    const span = Number.isInteger(minutes) ? `${minutes} minutes` : `${maxMs / 1000} seconds`;
    this.invalid('session_expired', `Your session hit the maximum duration of ${span}.`, null);
    // The provider closes with 1001 (going away) at its maximum duration (realtime-protocol.md §7).
    this.close(1001, 'session_expired');
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.invalid('invalid_event', 'Binary frames are not supported; send JSON text frames.', null);
      return;
    }
    const raw = Buffer.isBuffer(data)
      ? data.toString('utf8')
      : Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data).toString('utf8');
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (e) {
      this.host.recordClientEvent(this.connectionId, '', raw);
      const detail = e instanceof Error ? e.message : String(e);
      this.invalid('invalid_json', `Invalid JSON received: could not parse the event (${detail}).`, null);
      return;
    }
    const ev = isObject(parsed) ? parsed : undefined;
    const type = str(ev, 'type');
    this.host.recordClientEvent(this.connectionId, type ?? '', raw);
    if (!ev) {
      this.invalid('invalid_event', 'Invalid event: expected a JSON object.', null);
      return;
    }
    const eventId = str(ev, 'event_id');
    if (type === undefined) {
      this.invalid('missing_required_parameter', "Missing required parameter: 'type'.", 'type', eventId);
      return;
    }
    try {
      this.dispatch(type, ev, eventId);
    } catch (e) {
      // A simulator bug must not look like a protocol answer; report it as upstream would a crash.
      this.host.logger.warn('simulator: handler failed', type, e);
      this.sendError('server_error', null, 'The server had an error while processing your request. Sorry about that!', null, eventId);
    }
  }

  private dispatch(type: string, ev: JsonObject, eventId: string | undefined): void {
    switch (type) {
      case 'session.update':
        return this.onSessionUpdate(ev, eventId, 'session.updated');
      case 'transcription_session.update':
        if (this.dialect === 'beta') return this.onSessionUpdate(ev, eventId, 'transcription_session.updated');
        break;
      case 'input_audio_buffer.append':
        return this.onAppend(ev, eventId);
      case 'input_audio_buffer.commit':
        return this.onCommit(eventId);
      case 'input_audio_buffer.clear':
        this.bufferBytes = 0;
        this.speechItemId = null;
        return this.send('input_audio_buffer.cleared');
      case 'conversation.item.create':
        return this.onItemCreate(ev, eventId);
      case 'conversation.item.truncate':
        return this.onItemTruncate(ev, eventId);
      case 'conversation.item.delete':
        return this.onItemDelete(ev, eventId);
      case 'conversation.item.retrieve':
        return this.onItemRetrieve(ev, eventId);
      case 'response.create':
        return this.onResponseCreate(ev, eventId);
      case 'response.cancel':
        return this.onResponseCancel(ev, eventId);
      case 'output_audio_buffer.clear':
        return this.invalid('invalid_value', 'output_audio_buffer.clear is only supported for WebRTC sessions.', 'type', eventId);
    }
    const supported = CLIENT_EVENTS[this.dialect].map((t) => `'${t}'`).join(', ');
    this.invalid('invalid_value', `Invalid value: '${type}'. Supported values are: ${supported}.`, 'type', eventId);
  }

  // ---------------------------------------------------------------------------------------------
  // Session config

  private view(): SessionView {
    return readSession(this.dialect, this.session);
  }

  private applyPatch(patch: JsonObject): void {
    const p = { ...patch };
    delete p.model;
    delete p.type;
    this.session = mergeSession(this.session, p);
  }

  /** Upstream decides auto-responses from what the client asked for, not from echoed defaults. */
  private noteTurnDetection(raw: JsonObject): void {
    const td = this.dialect === 'beta' ? raw.turn_detection : obj(obj(raw, 'audio'), 'input')?.turn_detection;
    if (td !== undefined) this.autoRespond = isObject(td) && td.create_response === true;
  }

  private onSessionUpdate(ev: JsonObject, eventId: string | undefined, reply: string): void {
    const patch = obj(ev, 'session');
    if (!patch) {
      this.invalid('missing_required_parameter', "Missing required parameter: 'session'.", 'session', eventId);
      return;
    }
    const raw = clone(patch);
    const err = validateSessionPatch(this.dialect, patch);
    if (err) {
      this.invalid(err.code, err.message, err.param, eventId);
      return;
    }
    this.applyPatch(patch);
    this.noteTurnDetection(raw);
    this.send(reply, { session: clone(this.session) });
  }

  // ---------------------------------------------------------------------------------------------
  // Input audio

  private onAppend(ev: JsonObject, eventId: string | undefined): void {
    const audio = str(ev, 'audio');
    if (audio === undefined) {
      this.invalid('missing_required_parameter', "Missing required parameter: 'audio'.", 'audio', eventId);
      return;
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(audio) || audio.length % 4 === 1) {
      this.invalid('invalid_value', "Invalid 'audio'. Expected base64-encoded audio bytes.", 'audio', eventId);
      return;
    }
    const bytes = Buffer.byteLength(audio, 'base64');
    if (bytes === 0) return;
    const ms = bytes / bytesPerMs(this.view().inputFormat);
    if (this.view().turnDetection && this.speechItemId === null) {
      this.speechItemId = randomId('item');
      this.send('input_audio_buffer.speech_started', { audio_start_ms: Math.round(this.audioCursorMs), item_id: this.speechItemId });
    }
    this.bufferBytes += bytes;
    this.audioCursorMs += ms;
  }

  private onCommit(eventId: string | undefined): void {
    const view = this.view();
    const ms = this.bufferBytes / bytesPerMs(view.inputFormat);
    if (ms < MIN_COMMIT_MS) {
      this.invalid(
        'input_audio_buffer_commit_empty',
        `Error committing input audio buffer: buffer too small. Expected at least ${MIN_COMMIT_MS}ms of audio, but buffer only has ${ms.toFixed(2)}ms of audio.`,
        null,
        eventId,
      );
      return;
    }
    const itemId = this.speechItemId ?? randomId('item');
    if (view.turnDetection) {
      this.send('input_audio_buffer.speech_stopped', { audio_end_ms: Math.round(this.audioCursorMs), item_id: itemId });
    }
    this.bufferBytes = 0;
    this.speechItemId = null;
    const previous = this.lastItemId();
    this.send('input_audio_buffer.committed', { previous_item_id: previous, item_id: itemId });
    const item: JsonObject = {
      id: itemId,
      object: 'realtime.item',
      type: 'message',
      status: 'completed',
      role: 'user',
      content: [{ type: 'input_audio', transcript: null }],
    };
    const conv: ConvItem = { item, tokens: { text: 0, audio: inputAudioTokens(ms), image: 0 }, audioMs: ms };
    this.items.push(conv);
    this.announceItem(conv, previous);
    if (view.transcription) this.transcribe(conv, ms, view.transcription);
    if (view.turnDetection && this.autoRespond && !this.active) this.startResponse({}, undefined);
  }

  private transcribe(conv: ConvItem, ms: number, cfg: JsonObject): void {
    const model = str(cfg, 'model') ?? 'whisper-1';
    const transcript = `Simulated transcript of ${Math.round(ms)} milliseconds of speech.`;
    const itemId = str(conv.item, 'id') ?? '';
    if (model !== 'whisper-1') {
      this.send('conversation.item.input_audio_transcription.delta', { item_id: itemId, content_index: 0, delta: transcript });
    }
    const usage: JsonObject =
      model === 'whisper-1'
        ? { type: 'duration', seconds: Math.ceil(ms / 1000) }
        : (() => {
            const audio = inputAudioTokens(ms);
            const text = textTokens(str(cfg, 'prompt') ?? '');
            const out = textTokens(transcript);
            return {
              type: 'tokens',
              total_tokens: audio + text + out,
              input_tokens: audio + text,
              input_token_details: { text_tokens: text, audio_tokens: audio },
              output_tokens: out,
            };
          })();
    const content = arr(conv.item, 'content');
    const part = content?.[0];
    if (isObject(part)) part.transcript = transcript;
    this.send('conversation.item.input_audio_transcription.completed', {
      item_id: itemId,
      content_index: 0,
      transcript,
      usage,
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Conversation items

  private lastItemId(): string | null {
    const last = this.items[this.items.length - 1];
    return last ? (str(last.item, 'id') ?? null) : null;
  }

  private findItem(id: string): number {
    return this.items.findIndex((c) => c.item.id === id);
  }

  private announceItem(conv: ConvItem, previousItemId: string | null): void {
    for (const name of this.names.itemCreated) this.send(name, { previous_item_id: previousItemId, item: clone(conv.item) });
    if (this.names.itemDone) this.send(this.names.itemDone, { previous_item_id: previousItemId, item: clone(conv.item) });
  }

  /** Validates a client item and works out what it costs as context. */
  private buildItem(raw: JsonObject, param: string): ConvItem | { error: string; message: string; param: string } {
    const type = str(raw, 'type');
    const item: JsonObject = { ...clone(raw), object: 'realtime.item', status: 'completed' };
    const fmt = this.view().inputFormat;
    if (type === 'message') {
      const role = str(raw, 'role');
      if (role !== 'user' && role !== 'assistant' && role !== 'system') {
        return { error: 'invalid_value', message: `Invalid value: '${role ?? ''}'. Supported values are: 'user', 'assistant', and 'system'.`, param: `${param}.role` };
      }
      const content = arr(raw, 'content');
      if (!content) return { error: 'missing_required_parameter', message: `Missing required parameter: '${param}.content'.`, param: `${param}.content` };
      const tokens = zeroTokens();
      let text = 0;
      let hasText = false;
      let audioMs = 0;
      const parts: Json[] = [];
      for (const [i, p] of content.entries()) {
        if (!isObject(p)) return { error: 'invalid_type', message: `Invalid type for '${param}.content[${i}]'.`, param: `${param}.content[${i}]` };
        const pType = str(p, 'type');
        const partText = str(p, 'text') ?? str(p, 'transcript');
        if (pType === 'input_text' || pType === 'text' || pType === 'output_text') {
          hasText = true;
          text += textTokens(str(p, 'text') ?? '');
          parts.push(clone(p));
        } else if (pType === 'input_audio' || pType === 'audio' || pType === 'output_audio') {
          const audio = str(p, 'audio');
          if (audio !== undefined) {
            const ms = Buffer.byteLength(audio, 'base64') / bytesPerMs(fmt);
            audioMs += ms;
            tokens.audio += role === 'assistant' ? outputAudioTokens(ms) : inputAudioTokens(ms);
          } else if (partText !== undefined) {
            hasText = true;
            text += textTokens(partText);
          }
          const { audio: _omitted, ...rest } = p;
          parts.push({ ...rest, transcript: str(p, 'transcript') ?? null });
        } else if (pType === 'input_image') {
          tokens.image += IMAGE_TOKENS;
          parts.push(clone(p));
        } else {
          return {
            error: 'invalid_value',
            message: `Invalid value: '${pType ?? ''}'. Supported values are: 'input_text', 'input_audio', 'input_image', and '${this.names.assistantTextPart}'.`,
            param: `${param}.content[${i}].type`,
          };
        }
      }
      tokens.text = hasText ? Math.max(1, text) : 0;
      item.content = parts;
      return { item, tokens, audioMs };
    }
    if (type === 'function_call_output') {
      const callId = str(raw, 'call_id');
      if (callId === undefined) return { error: 'missing_required_parameter', message: `Missing required parameter: '${param}.call_id'.`, param: `${param}.call_id` };
      const output = str(raw, 'output');
      if (output === undefined) return { error: 'missing_required_parameter', message: `Missing required parameter: '${param}.output'.`, param: `${param}.output` };
      return { item, tokens: { text: Math.max(1, textTokens(output)), audio: 0, image: 0 }, audioMs: 0 };
    }
    if (type === 'mcp_approval_response') {
      if (str(raw, 'approval_request_id') === undefined) {
        return { error: 'missing_required_parameter', message: `Missing required parameter: '${param}.approval_request_id'.`, param: `${param}.approval_request_id` };
      }
      if (typeof raw.approve !== 'boolean') return { error: 'missing_required_parameter', message: `Missing required parameter: '${param}.approve'.`, param: `${param}.approve` };
      return { item, tokens: { text: 1, audio: 0, image: 0 }, audioMs: 0 };
    }
    if (type === 'function_call') {
      const name = str(raw, 'name') ?? '';
      const args = str(raw, 'arguments') ?? '';
      return { item, tokens: { text: Math.max(1, textTokens(name + args)), audio: 0, image: 0 }, audioMs: 0 };
    }
    return {
      error: 'invalid_value',
      message: `Invalid value: '${type ?? ''}'. Supported values are: 'message', 'function_call', 'function_call_output', and 'mcp_approval_response'.`,
      param: `${param}.type`,
    };
  }

  private onItemCreate(ev: JsonObject, eventId: string | undefined): void {
    const raw = obj(ev, 'item');
    if (!raw) {
      this.invalid('missing_required_parameter', "Missing required parameter: 'item'.", 'item', eventId);
      return;
    }
    const built = this.buildItem(raw, 'item');
    if ('error' in built) {
      this.invalid(built.error, built.message, built.param, eventId);
      return;
    }
    const id = str(raw, 'id') ?? randomId('item');
    if (this.findItem(id) >= 0) {
      this.invalid('item_already_exists', `Item with id '${id}' already exists.`, 'item.id', eventId);
      return;
    }
    built.item.id = id;
    let at = this.items.length;
    const prevParam = ev.previous_item_id;
    if (typeof prevParam === 'string') {
      if (prevParam === 'root') at = 0;
      else {
        const idx = this.findItem(prevParam);
        if (idx < 0) {
          this.invalid('invalid_value', `Invalid value: '${prevParam}'. No item with this id exists in the conversation.`, 'previous_item_id', eventId);
          return;
        }
        at = idx + 1;
      }
    }
    const previous = at === 0 ? null : (str(this.items[at - 1]!.item, 'id') ?? null);
    this.items.splice(at, 0, built);
    this.announceItem(built, previous);
  }

  private requireItem(ev: JsonObject, eventId: string | undefined): number | null {
    const id = str(ev, 'item_id');
    if (id === undefined) {
      this.invalid('missing_required_parameter', "Missing required parameter: 'item_id'.", 'item_id', eventId);
      return null;
    }
    const idx = this.findItem(id);
    if (idx < 0) {
      this.invalid('invalid_value', `Invalid value: '${id}'. No item with this id exists in the conversation.`, 'item_id', eventId);
      return null;
    }
    return idx;
  }

  private onItemTruncate(ev: JsonObject, eventId: string | undefined): void {
    const idx = this.requireItem(ev, eventId);
    if (idx === null) return;
    const conv = this.items[idx]!;
    const contentIndex = num(ev, 'content_index') ?? 0;
    const endMs = num(ev, 'audio_end_ms');
    const part = arr(conv.item, 'content')?.[contentIndex];
    const partType = isObject(part) ? str(part, 'type') : undefined;
    if (conv.item.role !== 'assistant' || (partType !== 'audio' && partType !== 'output_audio')) {
      this.invalid('invalid_value', 'Only assistant messages with audio content can be truncated.', 'item_id', eventId);
      return;
    }
    if (endMs === undefined || endMs < 0) {
      this.invalid('missing_required_parameter', "Missing required parameter: 'audio_end_ms'.", 'audio_end_ms', eventId);
      return;
    }
    if (endMs > Math.ceil(conv.audioMs)) {
      this.invalid('invalid_value', `Audio content of ${Math.round(conv.audioMs)}ms is already shorter than ${endMs}ms`, 'audio_end_ms', eventId);
      return;
    }
    // Unheard audio and its transcript leave the context, so later turns re-bill less.
    conv.audioMs = endMs;
    conv.tokens = { ...conv.tokens, audio: outputAudioTokens(endMs) };
    if (isObject(part)) part.transcript = '';
    this.send('conversation.item.truncated', { item_id: str(conv.item, 'id') ?? '', content_index: contentIndex, audio_end_ms: endMs });
  }

  private onItemDelete(ev: JsonObject, eventId: string | undefined): void {
    const idx = this.requireItem(ev, eventId);
    if (idx === null) return;
    const [conv] = this.items.splice(idx, 1);
    this.send('conversation.item.deleted', { item_id: str(conv!.item, 'id') ?? '' });
  }

  private onItemRetrieve(ev: JsonObject, eventId: string | undefined): void {
    const idx = this.requireItem(ev, eventId);
    if (idx === null) return;
    this.send('conversation.item.retrieved', { item: clone(this.items[idx]!.item) });
  }

  // ---------------------------------------------------------------------------------------------
  // Responses

  private onResponseCreate(ev: JsonObject, eventId: string | undefined): void {
    if (this.active) {
      this.invalid(
        'conversation_already_has_active_response',
        `Conversation already has an active response in progress: ${this.active.id}. Wait until the response is finished before creating a new one.`,
        null,
        eventId,
      );
      return;
    }
    const params = obj(ev, 'response') ?? {};
    const modsKey = this.dialect === 'beta' ? 'modalities' : 'output_modalities';
    const check = validateSessionPatch(this.dialect, params[modsKey] === undefined ? {} : { [modsKey]: params[modsKey] }, 'response');
    if (check) {
      this.invalid(check.code, check.message, check.param, eventId);
      return;
    }
    const injected = this.host.faults().errorOnResponseCreate;
    if (injected) {
      this.sendError(injected.type, injected.code, injected.message, null, eventId);
      return;
    }
    this.startResponse(params, eventId);
  }

  /** Resolves the response's context: the conversation, or the explicit `input` of an out-of-band response. */
  private contextItems(params: JsonObject): ConvItem[] | { error: string; message: string; param: string } {
    const input = arr(params, 'input');
    if (!input) return this.items;
    const out: ConvItem[] = [];
    for (const [i, entry] of input.entries()) {
      if (!isObject(entry)) return { error: 'invalid_type', message: `Invalid type for 'response.input[${i}]'.`, param: `response.input[${i}]` };
      if (entry.type === 'item_reference') {
        const idx = this.findItem(str(entry, 'id') ?? '');
        if (idx < 0) return { error: 'invalid_value', message: `Invalid value: item '${str(entry, 'id') ?? ''}' not found.`, param: `response.input[${i}].id` };
        out.push(this.items[idx]!);
      } else {
        const built = this.buildItem(entry, `response.input[${i}]`);
        if ('error' in built) return built;
        out.push(built);
      }
    }
    return out;
  }

  private startResponse(params: JsonObject, eventId: string | undefined): void {
    const ctx = this.contextItems(params);
    if (!Array.isArray(ctx)) {
      this.invalid(ctx.error, ctx.message, ctx.param, eventId);
      return;
    }
    const view = this.view();
    const faults = { ...this.host.faults() };
    const modalities =
      (arr(params, this.dialect === 'beta' ? 'modalities' : 'output_modalities')?.filter((m): m is string => typeof m === 'string')) ??
      view.outputModalities;
    const instructions = str(params, 'instructions') ?? view.instructions;
    const tools = (arr(params, 'tools') ?? view.tools).filter(isObject);
    const toolChoice = params.tool_choice ?? view.toolChoice;
    const voice = this.dialect === 'beta' ? (str(params, 'voice') ?? view.voice) : (str(obj(obj(params, 'audio'), 'output'), 'voice') ?? view.voice);

    let input = { text: textTokens(instructions) + (tools.length > 0 ? textTokens(JSON.stringify(tools)) : 0), audio: 0, image: 0 };
    for (const c of ctx) input = addTokens(input, c.tokens);
    const cached = cachedTokens(this.previousInput, input, 0.5 + 0.45 * this.host.random());
    this.previousInput = input;

    const lastUser = latestUserText(ctx);
    const turn = planToolTurn(ctx, tools, toolChoice);
    const call = turn?.kind === 'function_call' ? turn : null;
    const h = hash32(lastUser ?? `${ctx.length}:${input.audio}:${input.text}`);
    const kind: ActiveResponse['kind'] = turn ? turn.kind : modalities.includes('audio') ? 'audio' : 'text';
    const itemId = randomId('item');
    let item: JsonObject;
    let text: string;
    if (turn?.kind === 'mcp') {
      text = '';
      item = { id: itemId, ...turn.item };
    } else if (call) {
      text = call.arguments;
      item = { id: itemId, object: 'realtime.item', type: 'function_call', status: 'in_progress', name: call.name, call_id: randomId('call'), arguments: '' };
    } else {
      text = REPLIES[h % REPLIES.length]!;
      item = { id: itemId, object: 'realtime.item', type: 'message', status: 'in_progress', role: 'assistant', content: [] };
    }
    // About a second of audio, varying with the input so different turns bill differently.
    const audioMs = 600 + (h % 9) * 100;
    const resp: ActiveResponse = {
      id: randomId('resp'),
      stalled: faults.stallResponses,
      finished: false,
      faults,
      names: this.names,
      outOfBand: params.conversation === 'none',
      kind,
      outputFormat: view.outputFormat,
      voice,
      modalities,
      metadata: params.metadata ?? null,
      input,
      cached,
      item: { item, tokens: zeroTokens(), audioMs: 0 },
      text,
      chunks: kind === 'audio' ? Math.max(1, Math.round(audioMs / this.host.audioChunkMs)) : 0,
      sentText: '',
      sentAudioMs: 0,
      deltas: 0,
    };
    this.active = resp;
    this.host.stats.responses++;
    if (resp.stalled) return;

    this.send('response.created', { response: this.responseObject(resp, 'in_progress', null, [], null) });
    const previous = resp.outOfBand ? null : this.lastItemId();
    if (!resp.outOfBand) this.items.push(resp.item);
    this.send('response.output_item.added', { response_id: resp.id, output_index: 0, item: clone(item) });
    if (!resp.outOfBand) {
      for (const name of this.names.itemCreated) this.send(name, { previous_item_id: previous, item: clone(item) });
    }
    if (kind === 'audio' || kind === 'text') {
      const part: JsonObject = kind === 'audio' ? { type: 'audio', transcript: '' } : { type: 'text', text: '' };
      this.send('response.content_part.added', { response_id: resp.id, item_id: itemId, output_index: 0, content_index: 0, part });
    }
    void this.stream(resp, previous).catch((e: unknown) => this.host.logger.warn('simulator: stream failed', e));
  }

  private responseObject(resp: ActiveResponse, status: string, statusDetails: Json, output: Json[], usage: RealtimeUsage | null): JsonObject {
    const base: JsonObject = {
      object: 'realtime.response',
      id: resp.id,
      status,
      status_details: statusDetails,
      output,
      conversation_id: resp.outOfBand ? null : this.conversationId,
    };
    if (this.dialect === 'beta') {
      Object.assign(base, {
        modalities: resp.modalities,
        voice: resp.voice,
        output_audio_format: resp.outputFormat,
        temperature: this.session.temperature ?? 0.8,
        max_output_tokens: 'inf',
      });
    } else {
      Object.assign(base, {
        output_modalities: resp.modalities,
        max_output_tokens: 'inf',
        audio: { output: { format: gaFormatObject(resp.outputFormat), voice: resp.voice } },
      });
    }
    base.usage = usage;
    base.metadata = resp.metadata;
    return base;
  }

  /** Waits between deltas, and while the peer is not reading, so a slow client never makes us buffer without bound. */
  private async pace(): Promise<void> {
    const ms = this.host.deltaIntervalMs;
    await new Promise<void>((resolve) => (ms > 0 ? setTimeout(resolve, ms) : setImmediate(resolve)));
    while (!this.closed && this.ws.bufferedAmount > BACKPRESSURE_BYTES) {
      await new Promise<void>((resolve) => setTimeout(resolve, 10));
    }
  }

  private isLive(resp: ActiveResponse): boolean {
    return !resp.finished && !this.closed && this.active === resp;
  }

  /** Applies mid-response faults after a delta; returns false when the response must stop. */
  private afterDelta(resp: ActiveResponse): boolean {
    resp.deltas++;
    const drop = resp.faults.dropMidResponseAfterDeltas;
    if (drop !== null && resp.deltas >= drop) {
      this.terminate();
      return false;
    }
    if (resp.faults.closeMidResponseWithCode !== null) {
      this.close(resp.faults.closeMidResponseWithCode, 'simulated upstream failure');
      return false;
    }
    return true;
  }

  private async stream(resp: ActiveResponse, previous: string | null): Promise<void> {
    if (resp.faults.dropMidResponseAfterDeltas === 0) {
      this.terminate();
      return;
    }
    const ids = { response_id: resp.id, item_id: str(resp.item.item, 'id') ?? '', output_index: 0 };
    if (resp.kind === 'mcp') {
      await this.pace();
      if (!this.isLive(resp)) return;
      this.finish(resp, 'completed', previous);
      return;
    }
    if (resp.kind === 'function_call') {
      const callId = str(resp.item.item, 'call_id') ?? '';
      const pieces = splitArgs(resp.text);
      for (const delta of pieces) {
        await this.pace();
        if (!this.isLive(resp)) return;
        this.send('response.function_call_arguments.delta', { ...ids, call_id: callId, delta });
        resp.sentText += delta;
        if (!this.afterDelta(resp)) return;
      }
      await this.pace();
      if (!this.isLive(resp)) return;
      this.send('response.function_call_arguments.done', { ...ids, call_id: callId, name: str(resp.item.item, 'name') ?? '', arguments: resp.text });
      this.finish(resp, 'completed', previous);
      return;
    }
    const words = resp.text.split(' ');
    const part = { ...ids, content_index: 0 };
    if (resp.kind === 'text') {
      for (const [i, w] of words.entries()) {
        await this.pace();
        if (!this.isLive(resp)) return;
        const delta = i === 0 ? w : ` ${w}`;
        this.send(this.names.textDelta, { ...part, delta });
        resp.sentText += delta;
        if (!this.afterDelta(resp)) return;
      }
      this.send(this.names.textDone, { ...part, text: resp.text });
      this.send('response.content_part.done', { ...part, part: { type: 'text', text: resp.text } });
      this.finish(resp, 'completed', previous);
      return;
    }
    let sample = 0;
    for (let c = 0; c < resp.chunks; c++) {
      await this.pace();
      if (!this.isLive(resp)) return;
      // Spread the words over the chunks so the transcript keeps pace with the audio.
      const from = Math.ceil((c * words.length) / resp.chunks);
      const to = Math.ceil(((c + 1) * words.length) / resp.chunks);
      if (to > from) {
        const delta = (from === 0 ? '' : ' ') + words.slice(from, to).join(' ');
        this.send(this.names.transcriptDelta, { ...part, delta });
        resp.sentText += delta;
      }
      const chunk = toneChunk(resp.outputFormat, this.host.audioChunkMs, sample);
      sample += chunk.samples;
      this.send(this.names.audioDelta, { ...part, delta: chunk.data.toString('base64') });
      resp.sentAudioMs += this.host.audioChunkMs;
      if (!this.afterDelta(resp)) return;
    }
    this.send(this.names.audioDone, part);
    this.send(this.names.transcriptDone, { ...part, transcript: resp.text });
    this.send('response.content_part.done', { ...part, part: { type: 'audio', transcript: resp.text } });
    this.finish(resp, 'completed', previous);
  }

  private onResponseCancel(ev: JsonObject, eventId: string | undefined): void {
    const resp = this.active;
    const wanted = str(ev, 'response_id');
    if (resp?.stalled && (wanted === undefined || wanted === resp.id)) return; // a hung upstream answers nothing
    if (!resp || (wanted !== undefined && wanted !== resp.id)) {
      this.invalid('response_cancel_not_active', 'Cancellation failed: no active response found', null, eventId);
      return;
    }
    this.finish(resp, 'cancelled', null);
  }

  /** Ends a response: final item, usage consistent with what was actually sent, response.done, rate limits. */
  private finish(resp: ActiveResponse, status: 'completed' | 'cancelled', previous: string | null): void {
    if (resp.finished) return;
    resp.finished = true;
    if (this.active === resp) this.active = null;
    const item = resp.item.item;
    const complete = status === 'completed';
    const sentText = complete ? resp.text : resp.sentText;
    let output: { text: number; audio: number };
    if (resp.kind === 'mcp') {
      output = { text: textTokens(JSON.stringify(item)), audio: 0 };
      resp.item.tokens = { text: Math.max(1, output.text), audio: 0, image: 0 };
    } else if (resp.kind === 'function_call') {
      item.arguments = sentText;
      output = { text: textTokens(sentText), audio: 0 };
      resp.item.tokens = { text: Math.max(1, textTokens((str(item, 'name') ?? '') + sentText)), audio: 0, image: 0 };
    } else if (resp.kind === 'text') {
      item.content = [{ type: this.names.assistantTextPart, text: sentText }];
      output = { text: textTokens(sentText), audio: 0 };
      resp.item.tokens = { text: textTokens(sentText), audio: 0, image: 0 };
    } else {
      item.content = [{ type: this.names.assistantAudioPart, transcript: sentText }];
      output = { text: textTokens(sentText), audio: outputAudioTokens(resp.sentAudioMs) };
      resp.item.audioMs = resp.sentAudioMs;
      resp.item.tokens = { text: 0, audio: outputAudioTokens(resp.sentAudioMs), image: 0 };
    }
    item.status = complete ? 'completed' : 'incomplete';
    const usage = buildUsage(resp.input, resp.cached, output);
    const prev = resp.outOfBand ? null : (previous ?? this.previousOf(str(item, 'id') ?? ''));
    this.send('response.output_item.done', { response_id: resp.id, output_index: 0, item: clone(item) });
    if (this.names.itemDone && !resp.outOfBand) this.send(this.names.itemDone, { previous_item_id: prev, item: clone(item) });
    const details: Json = complete ? null : { type: 'cancelled', reason: 'client_cancelled' };
    this.send('response.done', { response: this.responseObject(resp, status, details, [clone(item)], usage) });
    const stats = this.host.stats;
    stats.responseDoneSent++;
    if (!complete) stats.cancelled++;
    this.host.recordUsage(this.clientRequestId, usage);
    this.send('rate_limits.updated', { rate_limits: this.host.rateLimitsAfter(usage.total_tokens) });
  }

  private previousOf(id: string): string | null {
    const idx = this.findItem(id);
    return idx > 0 ? (str(this.items[idx - 1]!.item, 'id') ?? null) : null;
  }
}

/** Text of the newest user message, unless a tool result came after it (then the model just answers). */
function latestUserText(ctx: ConvItem[]): string | null {
  for (let i = ctx.length - 1; i >= 0; i--) {
    const it = ctx[i]!.item;
    if (it.type !== 'message') return null;
    if (it.role === 'user') {
      const texts: string[] = [];
      for (const p of arr(it, 'content') ?? []) {
        if (isObject(p)) texts.push(str(p, 'text') ?? str(p, 'transcript') ?? '');
      }
      return texts.join(' ');
    }
  }
  return null;
}

/*
 * Deterministic tool calls (what tests of the relay's server-side tools rely on):
 * - a user message (text, or an audio item's transcript) that contains a session function
 *   tool's name makes the next response call it, with arguments that satisfy its schema's
 *   required properties; tool_choice "required" calls the first tool, "none" none;
 * - if that message also contains "invalid arguments", the first call carries required
 *   properties of the wrong type; after a function_call_output reporting invalid_arguments the
 *   model retries once with valid arguments ("always invalid arguments": it never corrects them);
 * - after any other function_call_output the model answers in text or audio;
 * - a user message that contains the server_label of a session `type: "mcp"` tool makes the
 *   next response an `mcp_approval_request` item (require_approval other than "never") or an
 *   `mcp_call` item; after an `mcp_approval_response` it answers with the `mcp_call` (approved)
 *   or in text/audio (rejected).
 */
type ToolTurn = { kind: 'function_call'; name: string; arguments: string } | { kind: 'mcp'; item: JsonObject };

function planToolTurn(ctx: ConvItem[], tools: JsonObject[], toolChoice: Json): ToolTurn | null {
  if (toolChoice === 'none') return null;
  const last = ctx[ctx.length - 1]?.item;
  if (last?.type === 'mcp_approval_response') {
    const request = ctx.map((c) => c.item).find((i) => i.type === 'mcp_approval_request' && i.id === last.approval_request_id);
    if (last.approve !== true || !request) return null;
    return {
      kind: 'mcp',
      item: { object: 'realtime.item', type: 'mcp_call', server_label: request.server_label ?? '', name: request.name ?? '', arguments: request.arguments ?? '{}', approval_request_id: str(request, 'id') ?? '', output: 'simulated MCP result', error: null },
    };
  }
  const userText = latestUserText(ctx);
  if (last?.type === 'function_call_output') {
    const trigger = userTextBefore(ctx);
    if (!trigger?.includes('invalid arguments') || !(str(last, 'output') ?? '').includes('"invalid_arguments"')) return null;
    const previous = [...ctx].reverse().find((c) => c.item.type === 'function_call')?.item;
    const tool = tools.find((t) => t.name === previous?.name);
    if (!tool || (str(last, 'output') ?? '').includes('"attempts_left":0')) return null;
    return { kind: 'function_call', name: str(tool, 'name') ?? '', arguments: JSON.stringify(sampleArgs(obj(tool, 'parameters'), trigger.includes('always invalid arguments'))) };
  }
  if (userText === null) return null;
  const mcp = tools.find((t) => t.type === 'mcp' && typeof t.server_label === 'string' && t.server_label !== '' && userText.includes(t.server_label));
  if (mcp) {
    const name = arr(mcp, 'allowed_tools')?.find((n): n is string => typeof n === 'string') ?? 'call';
    const base = { object: 'realtime.item', server_label: mcp.server_label as string, name, arguments: '{}' };
    return mcp.require_approval === 'never'
      ? { kind: 'mcp', item: { ...base, type: 'mcp_call', output: 'simulated MCP result', error: null } }
      : { kind: 'mcp', item: { ...base, type: 'mcp_approval_request' } };
  }
  const call = chooseTool(tools, toolChoice, userText);
  if (!call) return null;
  if (!userText.includes('invalid arguments')) return { kind: 'function_call', ...call };
  const tool = tools.find((t) => t.name === call.name);
  return { kind: 'function_call', name: call.name, arguments: JSON.stringify(sampleArgs(obj(tool, 'parameters'), true)) };
}

/** The newest user message's text, however many tool items followed it. */
function userTextBefore(ctx: ConvItem[]): string | null {
  for (let i = ctx.length - 1; i >= 0; i--) {
    const it = ctx[i]!.item;
    if (it.type === 'message' && it.role === 'user') return latestUserText([ctx[i]!]);
  }
  return null;
}

function chooseTool(tools: JsonObject[], toolChoice: Json, userText: string | null): { name: string; arguments: string } | null {
  const fns = tools.filter((t) => (t.type ?? 'function') === 'function' && typeof t.name === 'string');
  if (fns.length === 0 || toolChoice === 'none' || userText === null) return null;
  let chosen: JsonObject | undefined;
  if (isObject(toolChoice) && typeof toolChoice.name === 'string') chosen = fns.find((t) => t.name === toolChoice.name);
  else if (toolChoice === 'required') chosen = fns.find((t) => userText.includes(str(t, 'name') ?? '')) ?? fns[0];
  else chosen = fns.find((t) => userText.includes(str(t, 'name') ?? ''));
  if (!chosen) return null;
  return { name: str(chosen, 'name') ?? '', arguments: JSON.stringify(sampleArgs(obj(chosen, 'parameters'))) };
}

/** Fills the schema's required properties with plausible values, so the arguments validate. */
function sampleArgs(schema: JsonObject | undefined, wrongTypes = false): JsonObject {
  const out: JsonObject = {};
  const props = obj(schema, 'properties') ?? {};
  for (const name of (arr(schema, 'required') ?? []).filter((n): n is string => typeof n === 'string')) {
    const p = obj(props, name);
    const t = str(p, 'type');
    if (wrongTypes) {
      out[name] = t === 'string' ? 12345 : 'not-a-' + (t ?? 'value');
      continue;
    }
    const en = arr(p, 'enum');
    out[name] = en && en.length > 0 ? en[0]! : t === 'number' || t === 'integer' ? 1 : t === 'boolean' ? true : t === 'array' ? [] : t === 'object' ? {} : 'sample';
  }
  return out;
}

function splitArgs(args: string): string[] {
  if (args.length <= 2) return [args];
  const third = Math.ceil(args.length / 3);
  return [args.slice(0, third), args.slice(third, 2 * third), args.slice(2 * third)].filter((s) => s.length > 0);
}
