import { randomUUID } from 'node:crypto';
import { costOf } from './cost';
import type { ModelPrice, PriceBook } from './prices';
import { emptyUsage, parseResponseDone, parseTranscriptionCompleted, type TokenUsage, type UsageProblem } from './usage';
import type { DurableLedger, RecordResult } from '../storage/ledger-durable';
import type { LedgerEntry } from '../storage/ledger';

export interface MeterContext {
  sessionId: string;
  user: string;
  tenant?: string;
  keyId?: string;
  provider: string;
  /** The model served and billed. */
  model: string;
  /** The model the client asked for, when MODEL_ALIASES served `model` in its place. */
  requestedModel?: string;
  /** Input-audio transcription model, if known at connect; `onSessionUpdated` also learns it. */
  transcriptionModel?: string;
}

type Logger = { warn(o: object, m: string): void };

/*
 * Estimates, for a response that was created but never reported usage (the session was cut):
 * - Audio frames are counted by their raw length, never parsed (hot path: one addition per
 *   frame). A frame is a JSON envelope around base64 audio; the envelope is subtracted as a
 *   constant (the shortest realistic one, so the estimate errs slightly high), and base64 is
 *   4/3 of the audio bytes.
 * - Audio bytes per second: pcm16 at 24 kHz mono = 48000; g711 μ-law/A-law at 8 kHz = 8000.
 *   The format follows the session (see onSessionUpdated); pcm16 until told otherwise.
 * - Tokens: user audio 10 per second, model audio 20 per second (the protocol reference, §4);
 *   text ≈ characters / 4, rounded up.
 * - Input audio is the audio appended since the previous response was created (the new turn);
 *   input text is the text the client sent since then (item text, instructions; ≈ 4 chars per
 *   token). The context the model re-reads is taken from the last usage report: its input plus
 *   its output tokens (the output joins the conversation), all as uncached (errs high).
 * - When the response streamed audio, its text deltas are the audio's transcript, which upstream
 *   does not bill as text output; they are then not counted.
 */
const APPEND_ENVELOPE_BYTES = 47; // {"type":"input_audio_buffer.append","audio":""}
const DELTA_ENVELOPE_BYTES = 190; // type, event_id, response_id, item_id, indexes, "delta":""
const PCM16_24K_BYTES_PER_S = 48_000;
const G711_BYTES_PER_S = 8_000;
const INPUT_AUDIO_TOKENS_PER_S = 10;
const OUTPUT_AUDIO_TOKENS_PER_S = 20;
const CHARS_PER_TEXT_TOKEN = 4;

interface ContextTokens {
  text: number;
  audio: number;
  image: number;
}

/** The dearest output a response can produce when it names no max_output_tokens: the model maximum. */
export const DEFAULT_MAX_OUTPUT_TOKENS = 4096;
/** Largest cost a row may carry; BIGINT's maximum. Usage counts are bounded far below it. */
const MAX_COST_NANOS = 2n ** 63n - 1n;

interface OpenResponse {
  id: string;
  /** Context re-read, from the usage report before this response. */
  context: ContextTokens;
  /** Characters of text the client sent for this turn. */
  inText: number;
  inAudioB64: number;
  outAudioB64: number;
  outText: number;
}

/**
 * Meters one relay session: counts audio and text frames as they pass (for estimates), writes
 * one ledger row per response.done (exact usage) and per transcription, and on session end an
 * ESTIMATED row for every response that never reported usage.
 *
 * Which row wins when both exist for one response: the exact one. The ledger keeps the first
 * row for a (provider, response id) except that an exact row replaces an estimated one, so a
 * response.done arriving after the estimate corrects it, and an estimate arriving after the
 * exact row is ignored. `totals` follows the same rule.
 */
export class SessionMeter {
  private readonly ledger: DurableLedger;
  private readonly prices: PriceBook;
  private readonly context: MeterContext;
  private readonly fallbackModel?: string;
  private readonly now: () => Date;
  private readonly logger?: Logger;

  // Hot-path counters: plain numbers, one addition per frame, no allocation.
  private pendingInAudioB64 = 0;
  private pendingTextChars = 0;
  private contextTokens: ContextTokens = { text: 0, audio: 0, image: 0 };
  private outAudioB64 = 0;
  private outText = 0;

  private inBytesPerS = PCM16_24K_BYTES_PER_S;
  private outBytesPerS = PCM16_24K_BYTES_PER_S;
  private transcriptionModel?: string;
  private upstreamSessionId?: string;

  private current: OpenResponse | null = null;
  private readonly open = new Map<string, OpenResponse>();
  private readonly done = new Set<string>();
  private readonly estimatedNanos = new Map<string, bigint>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly warned = new Set<string>();
  private ended = false;
  /** Called for each response.done whose usage was missing or malformed (billed as an estimate). */
  onUsageAnomaly?: (problem: UsageProblem) => void;
  private nanos = 0n;
  private responses = 0;

  constructor(deps: {
    ledger: DurableLedger;
    prices: PriceBook;
    context: MeterContext;
    fallbackModel?: string;
    now?: () => Date;
    logger?: Logger;
  }) {
    this.ledger = deps.ledger;
    this.prices = deps.prices;
    this.context = deps.context;
    this.fallbackModel = deps.fallbackModel;
    this.now = deps.now ?? (() => new Date());
    this.logger = deps.logger;
    this.transcriptionModel = deps.context.transcriptionModel;
  }

  /** Running cost of the session: rows written or spooled, exact rows replacing estimates. */
  get totals(): { nanos: bigint; responses: number } {
    return { nanos: this.nanos, responses: this.responses };
  }

  onClientAudioAppend(frameBytes: number): void {
    this.pendingInAudioB64 += frameBytes > APPEND_ENVELOPE_BYTES ? frameBytes - APPEND_ENVELOPE_BYTES : 0;
  }

  /** Text the client sent that the model will read: item text, instructions (characters). */
  onClientText(chars: number): void {
    if (chars > 0) this.pendingTextChars += chars;
  }

  /**
   * What the next response may cost at most, as far as the relay can tell: the context so far
   * (last usage report, uncached), the audio and text sent since, and `maxOutputTokens` of output
   * at the model's dearest output price (audio). For budget reservations.
   */
  reservationNanos(maxOutputTokens: number | null): bigint {
    const { price } = this.resolvePrice(this.context.model, this.now());
    if (!price) return 0n;
    const usage = emptyUsage();
    usage.input_text = this.contextTokens.text + Math.ceil(this.pendingTextChars / CHARS_PER_TEXT_TOKEN);
    usage.input_audio = this.contextTokens.audio + this.audioTokens(this.pendingInAudioB64);
    usage.input_image = this.contextTokens.image;
    const out = maxOutputTokens ?? DEFAULT_MAX_OUTPUT_TOKENS;
    const asAudio = costOf({ ...emptyUsage(), output_audio: out }, price).nanos;
    const asText = costOf({ ...emptyUsage(), output_text: out }, price).nanos;
    return costOf(usage, price).nanos + (asAudio > asText ? asAudio : asText);
  }

  onUpstreamAudioDelta(frameBytes: number): void {
    this.outAudioB64 += frameBytes > DELTA_ENVELOPE_BYTES ? frameBytes - DELTA_ENVELOPE_BYTES : 0;
  }

  onUpstreamTextDelta(frameBytes: number): void {
    this.outText += frameBytes > DELTA_ENVELOPE_BYTES ? frameBytes - DELTA_ENVELOPE_BYTES : 0;
  }

  /**
   * Optional: pass `session.created` / `session.updated` events (beta or GA) so estimates use
   * the session's audio formats and transcriptions are priced at the configured model.
   */
  onSessionUpdated(event: unknown): void {
    const session = field(event, 'session');
    if (!session) return;
    // The first id the upstream gives its session scopes every response id of this session.
    if (this.upstreamSessionId === undefined && typeof session.id === 'string' && session.id.length > 0 && session.id.length <= 200) this.upstreamSessionId = session.id;
    const audio = field(session, 'audio');
    const input = field(audio, 'input');
    const output = field(audio, 'output');
    const inRate = bytesPerSecond(session.input_audio_format ?? input?.format);
    const outRate = bytesPerSecond(session.output_audio_format ?? output?.format);
    if (inRate) this.inBytesPerS = inRate;
    if (outRate) this.outBytesPerS = outRate;
    const transcription = field(session, 'input_audio_transcription') ?? field(input, 'transcription');
    if (transcription && typeof transcription.model === 'string' && transcription.model) this.transcriptionModel = transcription.model;
  }

  /**
   * The ledger key of a response: its id scoped to the upstream session it came from (the relay
   * session's id until the upstream names its own), so the same id from another user's upstream
   * session is another row, never a duplicate of this one nor a replacement for it.
   */
  private responseKey(responseId: string): string {
    return `${encodeURIComponent(this.upstreamSessionId ?? this.context.sessionId)}:${responseId}`;
  }

  onResponseCreated(responseId: string): void {
    this.settleCurrent();
    const r: OpenResponse = { id: responseId, context: { ...this.contextTokens }, inText: this.pendingTextChars, inAudioB64: this.pendingInAudioB64, outAudioB64: 0, outText: 0 };
    this.pendingInAudioB64 = 0;
    this.pendingTextChars = 0;
    this.current = r;
    this.open.set(responseId, r);
  }

  onResponseDone(event: unknown): Promise<void> {
    const parsed = parseResponseDone(event);
    if (!parsed) return Promise.resolve();
    // Bookkeeping happens before any await, so an onSessionEnd called right after (not awaiting
    // this) already knows the response finished and writes no estimate for it.
    if (this.current?.id === parsed.responseId) this.settleCurrent();
    const open = this.open.get(parsed.responseId);
    this.open.delete(parsed.responseId);
    // A repeat within the session is not even written: the ledger would drop it anyway, but
    // while the database is away it would be spooled and counted in `totals` twice.
    const repeat = this.done.has(parsed.responseId);
    this.done.add(parsed.responseId);
    if (repeat) return Promise.resolve();
    if (!parsed.usage) {
      // Never a silent $0: a response without trustworthy usage is billed as an estimate, flagged.
      this.onUsageAnomaly?.(parsed.usageProblem ?? 'missing');
      this.warnOnce(`usage:${parsed.usageProblem}`, { responseId: parsed.responseId, problem: parsed.usageProblem }, 'response.done without usable usage; billed as an estimate');
      const r = open ?? { id: parsed.responseId, context: { ...this.contextTokens }, inText: 0, inAudioB64: 0, outAudioB64: 0, outText: 0 };
      return this.track(this.write(this.responseKey(parsed.responseId), parsed.status, this.context.model, this.estimate(r), true, 'response', parsed.responseId));
    }
    const u = parsed.usage;
    this.contextTokens = { text: u.input_text + u.output_text, audio: u.input_audio + u.output_audio, image: u.input_image };
    return this.track(this.write(this.responseKey(parsed.responseId), parsed.status, this.context.model, u, false, 'response', parsed.responseId));
  }

  onTranscriptionCompleted(event: unknown): Promise<void> {
    const parsed = parseTranscriptionCompleted(event);
    if (!parsed?.usage) return Promise.resolve();
    let model = this.transcriptionModel;
    if (!model) {
      // Without the session's configuration, price as the model that reports this unit:
      // duration is whisper-1's, tokens the GPT-4o transcribe models' (the dearer one).
      model = parsed.kind === 'duration' ? 'whisper-1' : 'gpt-4o-transcribe';
      this.warnOnce('transcription-model', { sessionId: this.context.sessionId, assumed: model }, 'transcription model unknown; assumed');
    }
    // Item ids can be chosen by the client (conversation.item.create), so unlike response ids
    // they are only trusted to be unique within their session.
    const suffix = parsed.contentIndex > 0 ? `:${parsed.contentIndex}` : '';
    const key = `transcription:${this.context.sessionId}:${parsed.itemId}${suffix}`;
    if (this.done.has(key)) return Promise.resolve();
    this.done.add(key);
    return this.track(this.write(key, 'completed', model, parsed.usage, false, 'transcription'));
  }

  /**
   * Writes an estimated row for each response still open, and for each response.create the
   * upstream took but never acknowledged (it may be billing it: the turn's audio was sent),
   * then waits for every pending write.
   */
  async onSessionEnd(opts: { unacknowledgedRequests?: number } = {}): Promise<void> {
    if (!this.ended) {
      this.ended = true;
      this.settleCurrent();
      for (const r of this.open.values()) {
        if (this.done.has(r.id)) continue;
        void this.track(this.write(this.responseKey(r.id), 'in_progress', this.context.model, this.estimate(r), true, 'response', r.id));
      }
      this.open.clear();
      for (let i = 0; i < (opts.unacknowledgedRequests ?? 0); i++) {
        // No response id ever arrived: a synthetic one, unique per session and request. The
        // turn's audio goes to the first request; a later one re-reads the same context.
        const first = i === 0;
        const r: OpenResponse = {
          id: `unacknowledged:${this.context.sessionId}:${i + 1}`,
          context: { ...this.contextTokens },
          inText: first ? this.pendingTextChars : 0,
          inAudioB64: first ? this.pendingInAudioB64 : 0,
          outAudioB64: 0,
          outText: 0,
        };
        void this.track(this.write(r.id, 'unacknowledged', this.context.model, this.estimate(r), true, 'response'));
      }
      this.pendingInAudioB64 = 0;
      this.pendingTextChars = 0;
    }
    while (this.inflight.size > 0) await Promise.all([...this.inflight]);
  }

  private estimate(r: OpenResponse): TokenUsage {
    const usage = emptyUsage();
    usage.input_text = r.context.text + Math.ceil(r.inText / CHARS_PER_TEXT_TOKEN);
    usage.input_image = r.context.image;
    usage.input_audio = r.context.audio + this.audioTokens(r.inAudioB64);
    usage.output_audio = Math.round(((r.outAudioB64 * 3) / 4 / this.outBytesPerS) * OUTPUT_AUDIO_TOKENS_PER_S);
    usage.output_text = r.outAudioB64 > 0 ? 0 : Math.ceil(r.outText / CHARS_PER_TEXT_TOKEN);
    return usage;
  }

  private audioTokens(b64: number): number {
    return Math.round(((b64 * 3) / 4 / this.inBytesPerS) * INPUT_AUDIO_TOKENS_PER_S);
  }

  /** Moves the live output counters into the response they belong to. */
  private settleCurrent(): void {
    if (!this.current) return;
    this.current.outAudioB64 += this.outAudioB64;
    this.current.outText += this.outText;
    this.outAudioB64 = 0;
    this.outText = 0;
    this.current = null;
  }

  private resolvePrice(model: string, at: Date): { price: ModelPrice | null; fallback: boolean } {
    const own = this.prices.priceFor(this.context.provider, model, at);
    if (own) return { price: own, fallback: false };
    if (this.fallbackModel) {
      const fb = this.prices.priceFor(this.context.provider, this.fallbackModel, at);
      if (fb) {
        this.warnOnce(`fallback:${model}`, { model, provider: this.context.provider, fallbackModel: this.fallbackModel }, 'model unpriced; billed at the fallback model');
        return { price: fb, fallback: true };
      }
    }
    this.warnOnce(`unpriced:${model}`, { model, provider: this.context.provider }, 'model unpriced and no usable fallback; usage recorded at cost 0');
    return { price: null, fallback: false };
  }

  private async write(
    responseId: string,
    status: string,
    model: string,
    usage: TokenUsage,
    estimated: boolean,
    kind: 'response' | 'transcription',
    upstreamResponseId: string | null = null,
  ): Promise<void> {
    const at = this.now();
    const { price } = this.resolvePrice(model, at);
    let costNanos = 0n;
    if (price) {
      const cost = costOf(usage, price);
      costNanos = cost.nanos > MAX_COST_NANOS ? MAX_COST_NANOS : cost.nanos;
      if (cost.unpriced.length > 0) {
        this.warnOnce(`categories:${price.model}`, { model, priceModel: price.model, categories: cost.unpriced }, 'usage in categories the price entry does not price; billed 0 for them');
      }
    }
    const entry: LedgerEntry = {
      id: randomUUID(),
      responseId,
      upstreamResponseId,
      sessionId: this.context.sessionId,
      user: this.context.user,
      tenant: this.context.tenant ?? null,
      keyId: this.context.keyId ?? null,
      provider: this.context.provider,
      model,
      status,
      usage,
      costNanos,
      priceVersion: this.prices.version,
      priceModel: price?.model ?? null,
      // Response rows of an aliased session keep the name the client asked for beside the served one.
      requestedModel: model === this.context.model ? (this.context.requestedModel ?? null) : null,
      estimated,
      createdAt: at.getTime(),
    };
    let result: RecordResult;
    try {
      result = await this.ledger.record(entry);
    } catch (err) {
      // Database and spool disk both failed: the log line is the last copy of the row.
      this.logger?.warn(
        { err: err instanceof Error ? err.message : String(err), row: { ...entry, costNanos: entry.costNanos.toString() } },
        'ledger row lost: database and spool both failed',
      );
      return;
    }
    this.account(result, entry, kind);
  }

  private account(result: RecordResult, entry: LedgerEntry, kind: 'response' | 'transcription'): void {
    if (result === 'duplicate') return;
    if (result === 'replaced') {
      const before = this.estimatedNanos.get(entry.responseId);
      this.estimatedNanos.delete(entry.responseId);
      this.nanos += entry.costNanos - (before ?? 0n);
      if (before === undefined && kind === 'response') this.responses += 1;
      return;
    }
    this.nanos += entry.costNanos;
    if (kind === 'response') this.responses += 1;
    if (entry.estimated) this.estimatedNanos.set(entry.responseId, entry.costNanos);
  }

  private track(p: Promise<void>): Promise<void> {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
    return p;
  }

  private warnOnce(key: string, o: object, m: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.logger?.warn({ sessionId: this.context.sessionId, ...o }, m);
  }
}

type Json = Record<string, unknown>;

function field(v: unknown, key: string): Json | null {
  if (typeof v !== 'object' || v === null) return null;
  const f = (v as Json)[key];
  return typeof f === 'object' && f !== null && !Array.isArray(f) ? (f as Json) : null;
}

/** Audio bytes per second of a beta format name or a GA `{type, rate}` format object. */
function bytesPerSecond(format: unknown): number | null {
  if (format === 'pcm16') return PCM16_24K_BYTES_PER_S;
  if (format === 'g711_ulaw' || format === 'g711_alaw') return G711_BYTES_PER_S;
  if (typeof format === 'object' && format !== null) {
    const f = format as Json;
    if (f.type === 'audio/pcmu' || f.type === 'audio/pcma') return G711_BYTES_PER_S;
    if (f.type === 'audio/pcm') return typeof f.rate === 'number' && f.rate > 0 ? f.rate * 2 : PCM16_24K_BYTES_PER_S;
  }
  return null;
}
