/**
 * One WebRTC call through the relay, after the upstream answered the offer. Media and the
 * device's data channel go straight to the provider; the relay holds only the call's sideband
 * and through it does what it does for a WebSocket session: the same planner taps meter every
 * `response.done` and transcription, the locked configuration is applied (and put back when the
 * device changes it), and budgets, MAX_SESSION_MS and drain end the call.
 *
 * Fail closed: a call the relay cannot meter does not go on. The sideband not attaching, or
 * dropping and not re-attaching within CALL_SIDEBAND_REATTACH_MS, hangs the call up upstream.
 * Ending cancels the running responses by id, waits (CANCEL_WAIT_MS) for their response.done so
 * they are billed exactly, then hangs up.
 */
import type { Logger } from 'pino';
import { canonicalSession, lockedSessionUpdate } from '../auth/locked-session';
import type { Principal } from '../auth/principal';
import type { RelayConfig } from '../config/config';
import type { Lease } from '../limits';
import { CallSideband, type CallControl } from '../relay/call-sideband';
import type { ParsedEvent } from '../relay/relay-session';
import type { SessionPlan } from '../routes/realtime';
import { hangupUpstreamCall, sidebandTarget } from '../upstream/calls';
import type { UpstreamProvider } from '../upstream';

export type CallStatus = 'attaching' | 'live' | 'ending' | 'ended';

export interface RelayCallOptions {
  /** The upstream's call id, also the id the client sees (Location: /v1/realtime/calls/{id}). */
  callId: string;
  /** The relay's session id: ledger rows and logs of this call carry it. */
  sessionId: string;
  principal: Principal;
  model: string;
  provider: UpstreamProvider;
  config: RelayConfig;
  plan: SessionPlan;
  /** The concurrent-session slot this call holds until it ends. */
  lease: Lease;
  logger: Logger;
  /** After the call has ended and its usage is settled. */
  onEnded?: (call: RelayCall) => void;
  /** Each locked field the device changed (metrics). */
  onPolicyIncident?: () => void;
}

const WATCHED = new Set(['response.created', 'response.done', 'session.updated', 'error']);
const REATTACH_BACKOFF_MS = 250;

export class RelayCall {
  readonly callId: string;
  readonly sessionId: string;
  readonly principal: Principal;
  readonly model: string;
  readonly startedAt = Date.now();
  status: CallStatus = 'attaching';
  endReason = '';
  /** Locked fields the device changed and the relay put back (or hung up for). */
  policyIncidents = 0;
  reattachments = 0;

  private sideband: CallSideband;
  private readonly activeResponses = new Set<string>();
  private responsesSettled: (() => void) | null = null;
  private sessionUpdated: (() => void) | null = null;
  /** The locked fields as upstream echoed them after the relay applied them: what "unchanged" means. */
  private lockedBaseline: string | null = null;
  private maxTimer: NodeJS.Timeout | null = null;
  private ending: Promise<void> | null = null;
  private readonly control: CallControl;
  /** The relay's own response.create frames not yet answered (event ids, oldest first). */
  private readonly pendingRequests: string[] = [];
  private requestSeq = 0;
  private frames = 0;
  private bytes = 0;

  constructor(private readonly o: RelayCallOptions) {
    this.callId = o.callId;
    this.sessionId = o.sessionId;
    this.principal = o.principal;
    this.model = o.model;
    this.control = {
      sendToUpstream: (event) => void this.sideband.send(event),
      // There is no client socket: the device talks to the provider. What the relay would tell
      // it (budget exhausted, credential revoked) is a reason to end the call.
      sendToClient: (event) => {
        const code = noticeCode(event);
        o.logger.warn({ call_id: this.callId, session_id: this.sessionId, code }, 'call: relay notice with no client channel; ending the call');
        void this.end(code);
      },
      close: (_code, _reason, endReason) => void this.end(endReason ?? 'closed_by_relay'),
      sendResponseCreate: (event) => this.sendResponseCreate(event),
    };
    this.sideband = this.newSideband();
  }

  private newSideband(): CallSideband {
    const { config, provider } = this.o;
    return new CallSideband({
      target: sidebandTarget(provider, this.model, this.callId, this.sessionId),
      connectTimeoutMs: config.upstream.connectTimeoutMs,
      masking: config.relay.upstreamMasking,
      maxPayload: config.relay.maxFrameBytes * 4,
      taps: this.o.plan.hooks.upstreamTaps ?? {},
      watched: WATCHED,
      onEvent: (type, event) => this.onEvent(type, event),
      onFrame: (type, bytes) => {
        this.frames++;
        this.bytes += bytes;
        this.o.plan.hooks.onUpstreamFrame?.(type, bytes);
      },
      control: this.control,
      onLost: (code) => void this.onSidebandLost(code),
    });
  }

  /** Attaches the sideband and applies the locked config. False: the call was hung up. */
  async start(): Promise<boolean> {
    const opened = await this.sideband.connect();
    if (!opened.ok) {
      this.o.logger.warn({ call_id: this.callId, status: opened.status }, 'call: sideband refused; hanging up');
      await this.end('sideband_refused');
      return false;
    }
    if (!(await this.applyLock())) {
      await this.end('lock_not_applied');
      return false;
    }
    if (this.ending) return false;
    this.status = 'live';
    // plan.onStarted (the credential re-check) takes a WebSocket session; not wired for calls yet.
    this.o.plan.onCallStarted?.(this.control);
    this.maxTimer = setTimeout(() => void this.end('max_duration'), this.o.config.relay.maxSessionMs);
    this.maxTimer.unref();
    return true;
  }

  /**
   * Sends the relay's session.update (GA: `session.type` required) and waits for session.updated;
   * the sideband gets no session.created. Without a lock there is nothing to apply.
   */
  private async applyLock(): Promise<boolean> {
    const locked = this.o.principal.lockedSession;
    if (!locked) return true;
    const updated = new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), this.o.config.upstream.connectTimeoutMs);
      this.sessionUpdated = () => {
        clearTimeout(t);
        resolve(true);
      };
    });
    this.lockedBaseline = null;
    if (!this.sideband.send(this.lockUpdate())) return false;
    return updated;
  }

  /** The locked session.update; when it sets tools, the plan's (server tools) are kept in it. */
  private lockUpdate(): string {
    const update = lockedSessionUpdate(this.o.principal.lockedSession ?? {}, 'ga') as { session: Record<string, unknown> };
    const amended = 'tools' in update.session ? this.o.plan.callSession?.(update.session) : undefined;
    return JSON.stringify(amended && 'session' in amended ? { ...update, session: amended.session } : update);
  }

  /**
   * A response.create of the relay's own: the hold its admission took is tied to the answer, as on
   * a WebSocket session (first unanswered request ↔ next response.created; an error naming its
   * event_id releases it). A device response created in between takes the hold instead: each
   * response is held once either way.
   */
  private sendResponseCreate(frame: string): void {
    let event: ParsedEvent;
    try {
      event = JSON.parse(frame) as ParsedEvent;
    } catch {
      return;
    }
    const requestId = typeof event.event_id === 'string' ? event.event_id : `relay_rc_${this.sessionId}_${++this.requestSeq}`;
    if (!this.sideband.send(JSON.stringify({ ...event, event_id: requestId }))) return;
    this.pendingRequests.push(requestId);
    this.o.plan.hooks.onResponseRequested?.(requestId);
  }

  private lockedView(session: unknown): string {
    const locked = this.o.principal.lockedSession ?? {};
    if (session === null || typeof session !== 'object' || Array.isArray(session)) return '';
    const now = canonicalSession(session as Record<string, never>, 'ga');
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(canonicalSession(locked)).sort()) out[k] = now[k];
    return JSON.stringify(out);
  }

  private onEvent(type: string, event: ParsedEvent): void {
    const id = (event.response as { id?: unknown } | undefined)?.id;
    if (type === 'response.created' && typeof id === 'string') {
      this.activeResponses.add(id);
      const requestId = this.pendingRequests.shift();
      if (requestId !== undefined) this.o.plan.hooks.onResponseRequestAnswered?.(requestId, { responseId: id });
    } else if (type === 'error') {
      const eventId = (event.error as { event_id?: unknown } | undefined)?.event_id;
      const at = typeof eventId === 'string' ? this.pendingRequests.indexOf(eventId) : -1;
      if (at >= 0) {
        this.pendingRequests.splice(at, 1);
        this.o.plan.hooks.onResponseRequestAnswered?.(eventId as string, { error: true });
      }
    } else if (type === 'response.done' && typeof id === 'string') {
      this.activeResponses.delete(id);
      if (this.activeResponses.size === 0) this.responsesSettled?.();
    } else if (type === 'session.updated') this.onSessionUpdated(event);
  }

  /** Policy on a channel the relay does not see: a locked field the device changed is put back. */
  private onSessionUpdated(event: ParsedEvent): void {
    if (!this.o.principal.lockedSession) return;
    const view = this.lockedView(event.session);
    if (this.lockedBaseline === null) {
      this.lockedBaseline = view;
      this.sessionUpdated?.();
      this.sessionUpdated = null;
      return;
    }
    if (view === this.lockedBaseline) return;
    this.policyIncidents++;
    this.o.onPolicyIncident?.();
    const hangup = this.o.config.calls.lockedFieldAction === 'hangup';
    this.o.logger.warn({ call_id: this.callId, session_id: this.sessionId, user: this.principal.user, action: hangup ? 'hangup' : 'restore' }, 'call: device changed a locked session field');
    if (hangup) void this.end('locked_field_changed');
    else this.sideband.send(this.lockUpdate());
  }

  private async onSidebandLost(code: number): Promise<void> {
    if (this.ending) return;
    this.o.logger.warn({ call_id: this.callId, code }, 'call: sideband dropped; re-attaching');
    const deadline = Date.now() + this.o.config.calls.sidebandReattachMs;
    while (!this.ending && Date.now() < deadline) {
      const next = this.newSideband();
      this.sideband = next;
      const r = await next.connect();
      // The call no longer exists upstream (the device left, the provider ended it): nothing to meter.
      if (!r.ok && r.status === 404) break;
      if (r.ok) {
        this.reattachments++;
        this.o.logger.info({ call_id: this.callId }, 'call: sideband re-attached');
        // The device may have changed the session meanwhile: apply the lock again.
        if (this.o.principal.lockedSession && !(await this.applyLock())) break;
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, REATTACH_BACKOFF_MS));
    }
    if (!this.ending) await this.end(Date.now() < deadline ? 'upstream_call_ended' : 'sideband_lost');
  }

  /** Ends the call: cancel running responses by id, wait (bounded) for their usage, hang up. */
  end(reason: string): Promise<void> {
    this.ending ??= this.finish(reason);
    return this.ending;
  }

  private async finish(reason: string): Promise<void> {
    this.status = 'ending';
    this.endReason = reason;
    if (this.maxTimer) clearTimeout(this.maxTimer);
    const { config, provider, logger } = this.o;
    if (this.activeResponses.size > 0 && this.sideband.open) {
      const settled = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, config.relay.cancelWaitMs);
        this.responsesSettled = () => {
          clearTimeout(t);
          resolve();
        };
      });
      for (const id of this.activeResponses) this.sideband.send(JSON.stringify({ type: 'response.cancel', response_id: id }));
      await settled;
    }
    const hungUp = await hangupUpstreamCall(provider, this.callId, config.upstream.connectTimeoutMs);
    if (!hungUp) logger.error({ call_id: this.callId, session_id: this.sessionId }, 'call: upstream hangup failed');
    // Frames already in flight (a response.done racing the hangup) still get billed.
    await new Promise((resolve) => setTimeout(resolve, 50));
    this.sideband.close();
    try {
      await this.o.plan.onEnded?.({
        sessionId: this.sessionId,
        durationMs: Date.now() - this.startedAt,
        clientFrames: 0,
        clientBytes: 0,
        upstreamFrames: this.frames,
        upstreamBytes: this.bytes,
        clientCloseCode: null,
        upstreamCloseCode: null,
        endReason: reason,
        unfinishedResponses: [...this.activeResponses],
        unacknowledgedRequests: 0,
        unacknowledgedRequestIds: [],
      });
    } catch (err) {
      logger.error({ err, call_id: this.callId }, 'call: end handling failed');
    }
    await this.o.lease.release();
    this.status = 'ended';
    logger.info({ event: 'call_close', call_id: this.callId, session_id: this.sessionId, end_reason: reason, duration_ms: Date.now() - this.startedAt, reattachments: this.reattachments, policy_incidents: this.policyIncidents }, 'call ended');
    this.o.onEnded?.(this);
  }
}

/** The error code of a relay notice (`budget_exceeded`, `credential_expired`), as the call's end reason. */
function noticeCode(event: string): string {
  try {
    const code = (JSON.parse(event) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' && /^[a-z_]{1,60}$/.test(code) ? code : 'relay_notice';
  } catch {
    return 'relay_notice';
  }
}
