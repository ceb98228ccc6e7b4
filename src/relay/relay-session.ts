import { randomUUID } from 'node:crypto';
import type WebSocket from 'ws';
import type { RelayLimits } from '../config/config';
import { connectUpstream, type ConnectResult } from '../upstream/connect';
import type { UpstreamTarget } from '../upstream/provider';
import { CloseCode, clampReason, clientCodeForUpstreamClose, type HandshakeFailure } from './close-codes';
import { isFrameProblem, readClientFrameType, readFrameType } from './frame-type';
import { findIntegrityProblem, GuardedTypeLookalikes, integrityError, lookalikeError } from './frame-integrity';
import { clientEventId, errorEvent, type ProtocolError } from './protocol-errors';
import type { FrameTranslator } from './dialect/translator';

export type ParsedEvent = Record<string, unknown>;

/** What a guard decides about a client event the relay acts on. */
export type GuardDecision =
  | { action: 'forward' }
  | { action: 'reject'; error: ProtocolError }
  /** Forward this event instead of the client's (e.g. server tools merged into its session.update). */
  | { action: 'replace'; event: ParsedEvent }
  /** The event was for the relay itself (e.g. relay.tool_approval.response): never forwarded upstream. */
  | { action: 'consume' }
  | { action: 'close'; error: ProtocolError; code: number; reason: string };

export type ClientGuard = (event: ParsedEvent) => GuardDecision | Promise<GuardDecision>;
/**
 * What an upstream tap may do with its session. Narrower than RelaySession so that a WebRTC
 * call's sideband (src/relay/call-sideband.ts), which has no client socket, can run the same taps.
 */
export type TapSession = Pick<RelaySession, 'sendToClient' | 'sendToUpstream' | 'close'>;
export type UpstreamTap = (event: ParsedEvent, session: TapSession) => void;

/**
 * How the layers above (identity, metering, budgets, metrics) take part in a session without
 * the relay knowing them. Only event types named in `clientGuards` and `upstreamTaps` are
 * parsed; every other frame is forwarded as the bytes it arrived as.
 */
export interface SessionHooks {
  clientGuards?: Readonly<Record<string, ClientGuard>>;
  upstreamTaps?: Readonly<Record<string, UpstreamTap>>;
  /** Every client frame forwarded upstream: its type and size. Must be cheap (hot path). */
  onClientFrame?: (type: string, bytes: number) => void;
  /** Every upstream frame forwarded to the client. Must be cheap (hot path). */
  onUpstreamFrame?: (type: string, bytes: number) => void;
  /** Sent upstream as soon as it opens, before anything the client queued (a locked session.update). */
  initialUpstreamFrames?: readonly string[];
  onUpstreamOpen?: (info: { handshakeMs: number }) => void;
  onHandshakeFailure?: (failure: HandshakeFailure, status: number | 'timeout' | 'network', handshakeMs: number, detail: { host: string; cause: string }) => void;
  onEnd?: (summary: SessionSummary) => void;
  /** Every event the relay itself sends the client (errors, notices), for metrics. */
  onRelayEvent?: (event: string) => void;
  /** A response.create was sent upstream as request `requestId` (its event_id, see RelaySession). */
  onResponseRequested?: (requestId: string) => void;
  /** The upstream answered request `requestId`: with response.created (its id), or with an error naming its event_id. */
  onResponseRequestAnswered?: (requestId: string, answer: { responseId: string } | { error: true }) => void;
}

export interface SessionSummary {
  sessionId: string;
  durationMs: number;
  clientFrames: number;
  clientBytes: number;
  upstreamFrames: number;
  upstreamBytes: number;
  /** Code the client closed with, or that the relay closed the client with. */
  clientCloseCode: number | null;
  upstreamCloseCode: number | null;
  /** Why the session ended, in a word: client_closed, upstream_closed, handshake_failed, idle_timeout, … */
  endReason: string;
  /** Responses that were started upstream but never reported `response.done`. */
  unfinishedResponses: string[];
  /** response.create frames sent upstream that got neither `response.created` nor an error (a stalled upstream). */
  unacknowledgedRequests: number;
  /** Their request ids (event_ids), oldest first. */
  unacknowledgedRequestIds: string[];
}

export interface RelaySessionOptions {
  sessionId: string;
  client: WebSocket;
  upstream: UpstreamTarget;
  limits: RelayLimits;
  /** UPSTREAM_CONNECT_TIMEOUT_MS: how long the upstream handshake may take. */
  connectTimeoutMs: number;
  hooks?: SessionHooks;
  /** Absolute cap on one upstream frame; the upstream is trusted, this only bounds memory. */
  upstreamMaxPayload?: number;
  /**
   * Beta ⇄ GA translation when the client's dialect is not the upstream's (relay/dialect).
   * Guards see the client's event and taps the upstream's; only the forwarded bytes change.
   */
  translator?: FrameTranslator;
}

const OPEN = 1;

const GUARD_FAILED: GuardDecision = {
  action: 'reject',
  error: { type: 'server_error', code: 'relay_error', message: 'The relay could not check this event; try again.' },
};

/**
 * One client ↔ upstream session: forwards text frames both ways as the same bytes, in order,
 * with backpressure, and owns the lifecycle of both sockets.
 */
export class RelaySession {
  readonly sessionId: string;
  private readonly client: WebSocket;
  private upstream: WebSocket | null = null;
  private readonly limits: RelayLimits;
  private readonly hooks: SessionHooks;
  /**
   * Maps, not the hook objects: a client names the event type, and a plain object lookup would
   * find inherited members (`{"type":"toString"}`) and call them as guards.
   */
  private readonly clientGuards: ReadonlyMap<string, ClientGuard>;
  private readonly upstreamTaps: ReadonlyMap<string, UpstreamTap>;
  /** Near-misses of guarded types ("Session.Update"), refused rather than forwarded unchecked. */
  private readonly lookalikes: GuardedTypeLookalikes;
  private readonly startedAt = Date.now();

  /** Client frames waiting for the upstream to open, or for an async guard to decide. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** True while frames must wait in `pending` (upstream not open, or a guard is deciding). */
  private holding = true;

  private clientFrames = 0;
  private clientBytes = 0;
  private upstreamFrames = 0;
  private upstreamBytes = 0;

  /** Responses created upstream and not yet done, in creation order. */
  private readonly activeResponses = new Set<string>();
  /**
   * response.create frames sent upstream and not yet answered, by request id, oldest first. The
   * id is the frame's event_id: the upstream names it in an `error` answering the request
   * (`error.event_id`), which is how an error is matched to the request it refuses. A request
   * without an event_id (or reusing one still pending) is forwarded with one the relay assigns
   * (`relay_<uuid>`). A response.created answers the oldest pending request: the protocol does not
   * say which request a response answers, and the upstream answers them in order.
   */
  private readonly requests = new Set<string>();
  private waitingForResponsesDone: (() => void) | null = null;
  /** The one close of the upstream leg: every path that ends the session awaits the same one. */
  private finishing: Promise<void> | null = null;

  private ended = false;
  private endReason = '';
  private clientCloseCode: number | null = null;
  private upstreamCloseCode: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private maxDurationTimer: NodeJS.Timeout | null = null;
  private framesAtLastTick = -1;
  private idleSince = Date.now();
  private clientAlive = true;
  private upstreamAlive = true;

  constructor(private readonly o: RelaySessionOptions) {
    this.sessionId = o.sessionId;
    this.client = o.client;
    this.limits = o.limits;
    this.hooks = o.hooks ?? {};
    this.clientGuards = new Map(Object.entries(this.hooks.clientGuards ?? {}));
    this.upstreamTaps = new Map(Object.entries(this.hooks.upstreamTaps ?? {}));
    this.lookalikes = new GuardedTypeLookalikes(this.clientGuards.keys());
  }

  /** Starts relaying. Resolves when the session has ended on both legs. */
  run(): Promise<SessionSummary> {
    return new Promise((resolve) => {
      this.resolveEnded = resolve;
      this.client.on('message', (data: Buffer, isBinary: boolean) => this.onClientMessage(data, isBinary));
      this.client.on('close', (code: number) => this.onClientClose(code));
      this.client.on('error', () => this.onClientClose(1006));
      this.client.on('pong', () => {
        this.clientAlive = true;
      });
      this.startTimers();
      void this.openUpstream();
    });
  }

  private resolveEnded: (s: SessionSummary) => void = () => undefined;

  /** Sends an event to the client (relay-originated: errors, notices). */
  sendToClient(event: string): void {
    if (this.client.readyState !== OPEN) return;
    this.client.send(event);
    this.hooks.onRelayEvent?.(event);
  }

  /** Sends an event upstream on the relay's own behalf (e.g. a cancel), if the upstream is open. */
  sendToUpstream(event: string): void {
    if (this.upstream?.readyState === OPEN) this.upstream.send(event);
  }

  /**
   * Sends a response.create on the relay's own behalf (a tool's output continued), counted like
   * a client's so that a session ending meanwhile waits for its response.done to bill it.
   * The caller has already put it through the budget check (see src/tools/session-plan.ts).
   */
  sendResponseCreate(event: string): void {
    if (this.upstream?.readyState !== OPEN) return;
    this.upstream.send(this.registerRequest(Buffer.from(event, 'utf8')), { binary: false });
  }

  /** Ends the session from outside (drain, budget, credential revoked): closes the client, then the upstream, letting an in-flight response finish for billing. */
  close(code: number, reason: string, endReason = 'closed_by_relay'): void {
    if (this.ended) return;
    this.endReason ||= endReason;
    this.clientCloseCode = code;
    if (this.client.readyState === OPEN) this.client.close(code, clampReason(reason));
    void this.finishUpstream();
  }

  get responseInFlight(): boolean {
    return this.activeResponses.size > 0 || this.requests.size > 0;
  }

  // ---- upstream ---------------------------------------------------------------------------

  private async openUpstream(): Promise<void> {
    const maxPayload = this.o.upstreamMaxPayload ?? Math.max(64 * 1024 * 1024, this.limits.maxFrameBytes * 4);
    const { socket, result } = connectUpstream(this.o.upstream, {
      timeoutMs: this.o.connectTimeoutMs,
      compression: this.limits.compression,
      maxPayload,
      masking: this.limits.upstreamMasking,
    });
    this.upstream = socket;
    // Listen before the handshake settles: the first event can arrive in the same packet as
    // the 101 answer, and would be lost if listeners were attached after an await.
    let opened = false;
    socket.once('open', () => {
      opened = true;
    });
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onUpstreamMessage(data, isBinary));
    socket.on('close', (code: number, reason: Buffer) => {
      if (opened) this.onUpstreamClose(code, reason.toString('utf8'));
    });
    socket.on('pong', () => {
      this.upstreamAlive = true;
    });
    const r: ConnectResult = await result;
    if (!r.ok) {
      this.hooks.onHandshakeFailure?.(r.failure, r.status, r.handshakeMs, r.detail);
      this.endReason = 'handshake_failed';
      this.sendToClient(errorEvent(r.failure.error));
      this.clientCloseCode = r.failure.closeCode;
      if (this.client.readyState === OPEN) this.client.close(r.failure.closeCode, clampReason(r.failure.reason));
      this.upstream = null;
      this.finish();
      return;
    }
    if (this.ended || this.client.readyState !== OPEN) {
      // The client left while we were dialling: nothing was started upstream, close at once.
      socket.close(CloseCode.normal, 'client went away');
      this.finish();
      return;
    }
    this.hooks.onUpstreamOpen?.({ handshakeMs: r.handshakeMs });
    for (const frame of this.hooks.initialUpstreamFrames ?? []) socket.send(frame);
    this.releasePending();
  }

  private onUpstreamMessage(data: Buffer, isBinary: boolean): void {
    // A peer that is streaming is alive, even if its pong is queued behind a backlog.
    this.upstreamAlive = true;
    if (isBinary) return; // not part of the protocol; never forwarded to clients
    this.upstreamFrames++;
    this.upstreamBytes += data.length;
    const read = readFrameType(data);
    if (isFrameProblem(read)) {
      // The upstream is trusted but not infallible: forward as is, the client sees what the provider sent.
      this.forward(this.client, data, this.upstream);
      return;
    }
    const type = read.type;
    const tap = this.upstreamTaps.get(type);
    if (tap || type === 'response.created' || type === 'response.done' || type === 'error') {
      const event = read.parsed ?? parseEvent(data);
      this.trackResponses(type, event);
      if (tap && event) tap(event, this);
    }
    this.hooks.onUpstreamFrame?.(type, data.length);
    if (this.o.translator) {
      const out = this.o.translator.toClient(type, data);
      if (!isFrameList(out)) this.forward(this.client, out, this.upstream);
      else for (const frame of out) this.forward(this.client, frame, this.upstream);
      return;
    }
    this.forward(this.client, data, this.upstream);
  }

  /** Keeps count of responses in flight: the relay must not orphan one that is being billed. */
  private trackResponses(type: string, event: ParsedEvent | undefined): void {
    if (type === 'response.created') {
      const id = responseIdOf(event);
      if (id) {
        this.activeResponses.add(id);
        // Created while the relay is closing (its request was in flight): cancel it too.
        if (this.finishing) this.sendToUpstream(JSON.stringify({ type: 'response.cancel', response_id: id }));
      }
      const oldest = this.requests.values().next();
      if (!oldest.done) {
        this.requests.delete(oldest.value);
        if (id) this.hooks.onResponseRequestAnswered?.(oldest.value, { responseId: id });
      }
    } else if (type === 'response.done') {
      const id = responseIdOf(event);
      if (id) this.activeResponses.delete(id);
      if (!this.responseInFlight && this.waitingForResponsesDone) this.waitingForResponsesDone();
    } else if (type === 'error') {
      // Only an error naming a pending request answers it; any other error (a bogus event the
      // client sent meanwhile) leaves the request pending.
      const answered = (event?.error as { event_id?: unknown } | undefined)?.event_id;
      if (typeof answered === 'string' && this.requests.delete(answered)) {
        this.hooks.onResponseRequestAnswered?.(answered, { error: true });
        if (!this.responseInFlight && this.waitingForResponsesDone) this.waitingForResponsesDone();
      }
    }
  }

  private onUpstreamClose(code: number, reason: string): void {
    this.upstreamCloseCode = code;
    if (this.waitingForResponsesDone) this.waitingForResponsesDone();
    if (this.client.readyState === OPEN) {
      this.endReason ||= 'upstream_closed';
      const clientCode = clientCodeForUpstreamClose(code);
      if (clientCode !== code || code === CloseCode.internalError) {
        this.sendToClient(
          errorEvent({
            type: 'server_error',
            code: 'upstream_connection_lost',
            message: this.responseInFlight
              ? 'The upstream connection ended in the middle of a response.'
              : 'The upstream connection ended unexpectedly.',
          }),
        );
      }
      this.clientCloseCode = clientCode;
      this.client.close(clientCode, clampReason(reason || (clientCode === code ? 'upstream closed' : 'upstream connection lost')));
    }
    this.finish();
  }

  // ---- client -----------------------------------------------------------------------------

  private onClientMessage(data: Buffer, isBinary: boolean): void {
    this.clientAlive = true;
    if (this.ended) return;
    if (isBinary) {
      this.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'binary_frame_unsupported', message: 'Binary frames are not part of the Realtime protocol; send JSON text frames (audio travels base64-encoded).' }));
      return;
    }
    if (data.length > this.limits.maxFrameBytes) {
      this.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'frame_too_large', message: `Frame of ${data.length} bytes exceeds the relay's limit of ${this.limits.maxFrameBytes} bytes; split audio into smaller appends.` }));
      return;
    }
    if (this.holding) {
      this.enqueue(data);
      return;
    }
    this.handleClientFrame(data);
  }

  private enqueue(data: Buffer): void {
    if (this.pending.length >= this.limits.queueMaxFrames || this.pendingBytes + data.length > this.limits.queueMaxBytes) {
      this.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'queue_overflow', message: 'Too many frames sent before the upstream session was ready.' }));
      this.close(CloseCode.queueOverflow, 'too many frames before upstream was ready', 'queue_overflow');
      return;
    }
    this.pending.push(data);
    this.pendingBytes += data.length;
  }

  /** Forwards queued frames in order; stops if a guard needs to wait again. */
  private releasePending(): void {
    this.holding = false;
    while (this.pending.length > 0 && !this.holding && !this.ended) {
      const frame = this.pending.shift() as Buffer;
      this.pendingBytes -= frame.length;
      this.handleClientFrame(frame);
    }
  }

  private handleClientFrame(data: Buffer): void {
    const upstream = this.upstream;
    if (!upstream) return;
    const read = readClientFrameType(data);
    if (isFrameProblem(read)) {
      this.sendToClient(
        errorEvent(
          read === 'invalid_json'
            ? { type: 'invalid_request_error', code: 'invalid_json', message: 'The frame is not valid JSON.' }
            : { type: 'invalid_request_error', code: 'invalid_event', message: 'An event must be a JSON object with a string "type".' },
        ),
      );
      return;
    }
    const type = read.type;
    const guard = this.clientGuards.get(type);
    if (!guard) {
      const imitated = this.lookalikes.imitated(type);
      if (imitated !== null) {
        this.sendToClient(errorEvent({ ...lookalikeError(type, imitated), event_id: clientEventId(read.parsed ?? parseEvent(data)) }));
        return;
      }
      // A frame read from its prefix alone (audio) is forwarded unparsed. One the reader had to
      // parse may hide a second "type" that another parser would honour: check it whole.
      if (read.parsed && this.refuseIfAmbiguous(data, read.parsed)) return;
      this.sendClientFrame(type, data, read.parsed);
      return;
    }
    const event = read.parsed ?? parseEvent(data);
    if (!event) {
      this.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'invalid_json', message: 'The frame is not valid JSON.' }));
      return;
    }
    if (this.refuseIfAmbiguous(data, event)) return;
    let decision: GuardDecision | Promise<GuardDecision>;
    try {
      decision = guard(event);
    } catch {
      // A guard that throws (a pathological frame can overflow the stack of a recursive check)
      // runs inside a socket callback: uncaught, it would take the whole process down.
      decision = GUARD_FAILED;
    }
    if (!(decision instanceof Promise)) {
      this.applyDecision(decision, type, data, event);
      return;
    }
    // Hold every later frame until the guard decides, so order is kept.
    this.holding = true;
    decision
      .catch((): GuardDecision => GUARD_FAILED)
      .then((d) => {
        this.applyDecision(d, type, data, event);
        if (!this.ended) this.releasePending();
      });
  }

  /** Refuses (with an `error` event) a parsed frame holding a duplicate key or nested too deep. */
  private refuseIfAmbiguous(data: Buffer, event: ParsedEvent): boolean {
    const problem = findIntegrityProblem(data.toString('utf8'));
    if (!problem) return false;
    this.sendToClient(errorEvent({ ...integrityError(problem), event_id: clientEventId(event) }));
    return true;
  }

  private applyDecision(d: GuardDecision, type: string, data: Buffer, event: ParsedEvent): void {
    if (d.action === 'forward') {
      this.sendClientFrame(type, data, event);
      return;
    }
    if (d.action === 'replace') {
      this.sendClientFrame(type, Buffer.from(JSON.stringify(d.event), 'utf8'));
      return;
    }
    if (d.action === 'consume') return;
    this.sendToClient(errorEvent({ ...d.error, event_id: d.error.event_id ?? clientEventId(event) }));
    if (d.action === 'close') this.close(d.code, d.reason, 'policy');
  }

  /** Records a response.create about to go upstream under its request id (the client's event_id, else the relay's own, spliced in). */
  private registerRequest(data: Buffer, event?: ParsedEvent): Buffer {
    const parsed = event ?? parseEvent(data);
    const given = parsed?.event_id;
    let requestId: string;
    if (typeof given === 'string' && given.length > 0 && !this.requests.has(given)) {
      requestId = given;
    } else {
      // The relay's own id, so that an error answering this request can be told apart. Spliced
      // in as the object's last member rather than re-serialized: the frame stays the client's
      // bytes (a deeply nested one would also overflow JSON.stringify), and the last of
      // duplicate keys is the one JSON parsers keep.
      requestId = `relay_${randomUUID()}`;
      data = withLastMember(data, 'event_id', requestId);
    }
    this.requests.add(requestId);
    this.hooks.onResponseRequested?.(requestId);
    return data;
  }

  private sendClientFrame(type: string, frame: Buffer, event?: ParsedEvent): void {
    let data = type === 'response.create' ? this.registerRequest(frame, event) : frame;
    if (this.o.translator) {
      const out = this.o.translator.toUpstream(type, data);
      if (!Buffer.isBuffer(out)) {
        this.sendToClient(errorEvent(out.error));
        return;
      }
      data = out;
    }
    this.clientFrames++;
    this.clientBytes += data.length;
    this.hooks.onClientFrame?.(type, data.length);
    this.forward(this.upstream as WebSocket, data, this.client);
  }

  private onClientClose(code: number): void {
    if (this.clientCloseCode === null) this.clientCloseCode = code;
    this.endReason ||= 'client_closed';
    void this.finishUpstream();
  }

  // ---- forwarding with backpressure -------------------------------------------------------

  /**
   * Sends a frame as text, unchanged. When the receiving side's buffer passes the high-water
   * mark, the sending side is paused until this frame has been flushed, so a slow reader
   * bounds the relay's memory instead of growing it.
   */
  private forward(target: WebSocket, data: Buffer, source: WebSocket | null): void {
    if (target.readyState !== OPEN) return;
    if (source && target.bufferedAmount + data.length > this.limits.highWaterBytes && !source.isPaused) {
      source.pause();
      target.send(data, { binary: false }, () => {
        if (source.readyState === OPEN) source.resume();
      });
      return;
    }
    target.send(data, { binary: false });
  }

  // ---- ending -------------------------------------------------------------------------------

  /**
   * Closes the upstream leg. An orphan upstream session costs money, so it closes at once —
   * unless a response is in flight: then it is cancelled and its `response.done` awaited
   * (bounded by CANCEL_WAIT_MS) so that its usage can be billed.
   */
  private finishUpstream(): Promise<void> {
    // close() and then the client's close reply both land here: the second must wait for the
    // same cancel-and-wait, not close the upstream under it.
    this.finishing ??= this.closeUpstreamLeg();
    return this.finishing;
  }

  private async closeUpstreamLeg(): Promise<void> {
    const upstream = this.upstream;
    if (!upstream || upstream.readyState !== OPEN) {
      // CONNECTING: openUpstream sees the client gone once the handshake settles, and finishes.
      if (!upstream || upstream.readyState !== 0) this.finish();
      return;
    }
    if (this.responseInFlight && this.limits.cancelWaitMs > 0) {
      upstream.resume();
      // By id: a bare response.cancel cancels only the default conversation's response, and an
      // out-of-band response would go on billing. A request not yet created is cancelled when
      // its response.created arrives (trackResponses).
      for (const id of this.activeResponses) upstream.send(JSON.stringify({ type: 'response.cancel', response_id: id }));
      // A request with no response.created yet has no id to name: a bare cancel reaches it if it
      // is in the default conversation (an out-of-band one is cancelled once created, above).
      if (this.requests.size > 0) upstream.send(JSON.stringify({ type: 'response.cancel' }));
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.limits.cancelWaitMs);
        this.waitingForResponsesDone = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    if (upstream.readyState === OPEN) upstream.close(CloseCode.normal, 'client went away');
    // Do not wait for the upstream's close frame: a stalled upstream must not hold the session.
    setTimeout(() => upstream.terminate(), 1000).unref();
    this.finish();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    if (this.timer) clearInterval(this.timer);
    if (this.maxDurationTimer) clearTimeout(this.maxDurationTimer);
    this.pending = [];
    this.pendingBytes = 0;
    if (this.client.readyState === OPEN) {
      this.clientCloseCode ??= CloseCode.normal;
      this.client.close(this.clientCloseCode, 'session ended');
    }
    const summary: SessionSummary = {
      sessionId: this.sessionId,
      durationMs: Date.now() - this.startedAt,
      clientFrames: this.clientFrames,
      clientBytes: this.clientBytes,
      upstreamFrames: this.upstreamFrames,
      upstreamBytes: this.upstreamBytes,
      clientCloseCode: this.clientCloseCode,
      upstreamCloseCode: this.upstreamCloseCode,
      endReason: this.endReason || 'ended',
      unfinishedResponses: [...this.activeResponses],
      unacknowledgedRequests: this.requests.size,
      unacknowledgedRequestIds: [...this.requests],
    };
    this.hooks.onEnd?.(summary);
    this.resolveEnded(summary);
  }

  // ---- keepalive, idle and duration ----------------------------------------------------------

  private startTimers(): void {
    const tick = Math.max(50, Math.min(this.limits.pingIntervalMs || Infinity, this.limits.idleTimeoutMs || Infinity, 30_000));
    if (Number.isFinite(tick)) {
      this.timer = setInterval(() => this.onTick(), tick);
      this.timer.unref();
    }
    this.maxDurationTimer = setTimeout(() => {
      this.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'session_expired', message: `The session reached its maximum duration of ${this.limits.maxSessionMs} ms.` }));
      this.close(CloseCode.maxDuration, 'maximum session duration reached', 'max_duration');
    }, this.limits.maxSessionMs);
    this.maxDurationTimer.unref();
  }

  private lastPing = Date.now();

  private onTick(): void {
    const now = Date.now();
    const frames = this.clientFrames + this.upstreamFrames;
    if (frames !== this.framesAtLastTick) {
      this.framesAtLastTick = frames;
      this.idleSince = now;
    } else if (this.limits.idleTimeoutMs > 0 && now - this.idleSince >= this.limits.idleTimeoutMs) {
      this.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'idle_timeout', message: `No activity for ${this.limits.idleTimeoutMs} ms.` }));
      this.close(CloseCode.idleTimeout, 'idle timeout', 'idle_timeout');
      return;
    }
    if (this.limits.pingIntervalMs > 0 && now - this.lastPing >= this.limits.pingIntervalMs) {
      this.lastPing = now;
      // A peer that did not answer the previous ping is gone without a close: treat it as closed.
      if (!this.clientAlive) {
        this.endReason ||= 'client_unresponsive';
        this.client.terminate();
        return;
      }
      if (this.upstream?.readyState === OPEN && !this.upstreamAlive) {
        this.upstream.terminate();
        return;
      }
      this.clientAlive = false;
      this.upstreamAlive = false;
      if (this.client.readyState === OPEN) this.client.ping();
      if (this.upstream?.readyState === OPEN) this.upstream.ping();
    }
  }
}

function isFrameList(v: Buffer | readonly Buffer[]): v is readonly Buffer[] {
  return Array.isArray(v);
}

function parseEvent(data: Buffer): ParsedEvent | undefined {
  try {
    const v: unknown = JSON.parse(data.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ParsedEvent) : undefined;
  } catch {
    return undefined;
  }
}

/** The JSON object frame `data` with `"key":"value"` appended as its last member. */
function withLastMember(data: Buffer, key: string, value: string): Buffer {
  const end = data.lastIndexOf(0x7d /* } */);
  if (end < 0) return data;
  return Buffer.concat([data.subarray(0, end), Buffer.from(`,${JSON.stringify(key)}:${JSON.stringify(value)}`), data.subarray(end)]);
}

function responseIdOf(event: ParsedEvent | undefined): string | undefined {
  const response = event?.response as { id?: unknown } | undefined;
  return typeof response?.id === 'string' ? response.id : undefined;
}
