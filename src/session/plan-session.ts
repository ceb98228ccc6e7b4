import type { Logger } from 'pino';
import { billingKeyId } from '../auth/principal';
import { checkPromptOverride, checkSessionUpdate, checkSystemMessages, checkTranscriptionSessionUpdate, instructionsLocked, lockedSessionUpdate, type LockedFieldError } from '../auth/locked-session';
import type { RelayConfig } from '../config/config';
import type { Metering } from '../metering';
import { parseUsd } from '../metering/money';
import type { BudgetReservations } from '../metering/reservations';
import { SessionReservations } from '../metering/session-reservations';
import type { UsageProblem } from '../metering/usage';
import { BUDGET_STOP_EVENT_ID, budgetStopUpdate, maxOutputTokensOf, sessionSpending } from './budget-stop';
import { CloseCode } from '../relay/close-codes';
import { errorEvent, clientEventId, type ProtocolError } from '../relay/protocol-errors';
import type { GuardDecision, ParsedEvent, SessionHooks, TapSession } from '../relay/relay-session';
import type { SessionContext, SessionPlan } from '../routes/realtime';
import type { BudgetAlerter } from '../metering/budget-alerts';
import { trackSession, type SessionTrackingDeps } from './session-tracking';
import { planToolSession, withToolPlan } from '../tools/session-plan';
import type { ToolService } from '../tools/service';

export interface SessionObserver {
  /** Per-frame counters (metrics). Must be allocation-free: it runs on the hot path. */
  onClientFrame?(type: string, bytes: number): void;
  onUpstreamFrame?(type: string, bytes: number): void;
  onUpstreamOpen?(handshakeMs: number): void;
  onHandshakeFailure?(status: number | 'timeout' | 'network'): void;
  onUpstreamError?(event: ParsedEvent): void;
  onBilled?(provider: string, model: string): void;
  /** A response.done whose usage was missing or malformed: billed as a flagged estimate. */
  onUsageAnomaly?(provider: string, model: string, problem: UsageProblem): void;
  /** Each event the relay itself sends the client (its error events, notices); rare, not hot path. */
  onRelayEvent?(event: string): void;
}

/** How often a session re-checks its credential when CUT_SESSION_ON_CREDENTIAL_EXPIRY is on. */
export const CREDENTIAL_RECHECK_MS = 5000;

const BUDGET_EXCEEDED: ProtocolError = {
  type: 'insufficient_quota',
  code: 'budget_exceeded',
  message: 'Your spending limit has been reached; no further responses can be created in this session.',
};

const BUDGET_INSUFFICIENT: ProtocolError = {
  type: 'insufficient_quota',
  code: 'budget_exceeded',
  message: 'Your remaining budget cannot cover this response while other responses are in progress; try again when they are done.',
};

/** Client frames at most this long are counted as text for estimates; longer ones carry audio. */
const TEXT_FRAME_MAX_BYTES = 16 * 1024;

/**
 * Composes what the relay does beyond forwarding, for one session: the locked configuration of
 * an ephemeral key, metering of every response, and the budget checked on every
 * `response.create` (not only at connect, so a long session cannot overrun it).
 */
export function createSessionPlanner(deps: {
  config: RelayConfig;
  metering: Metering;
  logger: Logger;
  observer?: SessionObserver;
  /** The spend log and the live directory (admin console). */
  tracking?: Omit<SessionTrackingDeps, 'logger'>;
  /** Budget threshold webhooks, notified after each billed response. */
  alerts?: Pick<BudgetAlerter, 'notify'>;
  /** Server-side tools (TOOLS_FILE); their hooks are composed after this plan's own. */
  tools?: ToolService;
  /** In-flight budget reservations shared by all sessions and instances; none: settled spend only. */
  reservations?: BudgetReservations;
}): (ctx: SessionContext) => Promise<SessionPlan> {
  const { config, metering, observer } = deps;
  const dialect = config.upstream.dialect;
  const floorNanos = parseUsd(config.budgets.reservationFloorUsd ?? '0.01');

  return async ({ sessionId, principal, model, requestedModel, provider, upstreamDialect, credentialStillValid, transport }) => {
    const meter = metering.newSessionMeter({ sessionId, user: principal.user, tenant: principal.tenant, keyId: billingKeyId(principal), provider: provider.name, model, ...(requestedModel ? { requestedModel } : {}) });
    const who = { user: principal.user, tenant: principal.tenant, keyId: billingKeyId(principal) };
    const tracker = trackSession({ ...deps.tracking, logger: deps.logger }, { sessionId, principal, model, provider: provider.name, transport });
    const locked = principal.lockedSession;
    let overBudget = false;
    meter.onUsageAnomaly = (problem) => observer?.onUsageAnomaly?.(provider.name, model, problem);
    const holds = deps.reservations ? new SessionReservations(deps.reservations, who, floorNanos) : null;
    let sessionMaxOutput: number | null = null;
    let transcribing = false;
    /** Forwards the event, or refuses it naming the locked field it would change. */
    const lockedDecision = (err: LockedFieldError | null, event: ParsedEvent): GuardDecision =>
      err ? { action: 'reject', error: { type: 'invalid_request_error', ...err, event_id: clientEventId(event) } } : { action: 'forward' };

    const refuseOverBudget = (event: ParsedEvent): GuardDecision => ({
      action: 'reject',
      error: { ...BUDGET_EXCEEDED, event_id: clientEventId(event) },
    });

    /**
     * Over budget: tell the client, and stop what would spend without a response.create to
     * refuse (server-VAD turns, input transcription) at the upstream, or close the session.
     */
    const stopSpending = (session: TapSession, notify: boolean): void => {
      if (overBudget) return;
      overBudget = true;
      if (notify) session.sendToClient(errorEvent(BUDGET_EXCEEDED));
      if (config.budgets.exceededAction === 'close') session.close(CloseCode.budgetExceeded, 'budget exceeded', 'budget_exceeded');
      else session.sendToUpstream(budgetStopUpdate(dialect));
    };

    /** After each billed response: has this user (or tenant) now crossed a limit? */
    const afterBilling = async (session: TapSession): Promise<void> => {
      if (overBudget) return;
      const verdict = await metering.guard.check(who);
      if (verdict.ok) return;
      stopSpending(session, true);
    };

    /** Once over budget a session.update could turn automatic turns or transcription back on. */
    const refuseWhenOver = (event: ParsedEvent, then: () => GuardDecision): GuardDecision => (overBudget ? refuseOverBudget(event) : then());

    const hooks: SessionHooks = {
      initialUpstreamFrames: locked ? [JSON.stringify(lockedSessionUpdate(locked, upstreamDialect ?? dialect))] : [],
      clientGuards: {
        'session.update': (event) => refuseWhenOver(event, () => lockedDecision(checkSessionUpdate(locked, event) ?? checkPromptOverride(locked, event), event)),
        // Only with locked instructions: otherwise items are not the relay's business, and their
        // audio content is better left unparsed.
        ...(instructionsLocked(locked)
          ? {
              'conversation.item.create': (event: ParsedEvent): GuardDecision => lockedDecision(checkSystemMessages(locked, event), event),
            }
          : {}),
        'response.create': async (event) => {
          const locking = lockedDecision(checkSessionUpdate(locked, event) ?? checkPromptOverride(locked, event) ?? checkSystemMessages(locked, event), event);
          if (locking.action === 'reject') return locking;
          if (overBudget) return refuseOverBudget(event);
          if (holds) {
            // Reserve what this response may cost against the budget left after settled spend
            // and every other response in flight (all sessions, all instances); fails open.
            const params = event.response;
            const asked = maxOutputTokensOf(params);
            const estimate = meter.reservationNanos(asked === undefined ? sessionMaxOutput : asked);
            const admission = await holds.admitRequest(estimate);
            if (admission.ok) return { action: 'forward' };
            if (admission.reason === 'over_budget') {
              const session = sessionRef;
              if (session) stopSpending(session, false);
              else overBudget = true;
              return refuseOverBudget(event);
            }
            return { action: 'reject', error: { ...BUDGET_INSUFFICIENT, event_id: clientEventId(event) } };
          }
          // Spend may have happened on another instance or session: ask the ledger every time.
          let verdict;
          try {
            verdict = await metering.guard.check(who);
          } catch (err) {
            // The ledger is unreachable: usage is spooled meanwhile, so keep the conversation
            // going (fail open) rather than turning a database outage into a voice outage.
            deps.logger.warn({ err, session_id: sessionId }, 'budget check unavailable; allowing the response');
            return { action: 'forward' };
          }
          if (!verdict.ok) {
            overBudget = true;
            return refuseOverBudget(event);
          }
          return { action: 'forward' };
        },
        // A conversation session has no transcription session to update: on a locked one, the event
        // is a side door to the locked fields; once over budget, it could turn transcription back on.
        'transcription_session.update': (event) =>
          refuseWhenOver(event, () => (locked ? lockedDecision(checkTranscriptionSessionUpdate(locked), event) : { action: 'forward' })),
      },
      onResponseRequested: (requestId) => holds?.requested(requestId),
      onResponseRequestAnswered: (requestId, answer) => holds?.answered(requestId, answer),
      upstreamTaps: {
        'session.created': (event) => onSession(event),
        'session.updated': (event) => onSession(event),
        'response.created': (event, session) => {
          const id = (event.response as { id?: unknown } | undefined)?.id;
          if (typeof id !== 'string') return;
          // Estimate before the meter moves the turn's input into this response.
          const estimate = meter.reservationNanos(maxOutputTokensOf(event.response) ?? sessionMaxOutput);
          meter.onResponseCreated(id);
          const cancel = (): void => session.sendToUpstream(JSON.stringify({ type: 'response.cancel', response_id: id }));
          // Server VAD creates responses without a response.create to refuse: cancel them instead.
          if (overBudget) {
            if (!holds?.knows(id)) cancel();
            return;
          }
          if (!holds || holds.knows(id)) return;
          void holds.admitServerResponse(id, estimate).then((a) => {
            if (a.ok) return;
            cancel();
            if (a.reason === 'over_budget') stopSpending(session, true);
          });
        },
        'response.done': (event, session) => {
          const id = (event.response as { id?: unknown } | undefined)?.id;
          void meter
            .onResponseDone(event)
            .then(() => {
              // Released only once the row is written: the spend is always in the ledger or held.
              if (typeof id === 'string') holds?.settleResponse(id);
              observer?.onBilled?.(provider.name, model);
              deps.alerts?.notify(who);
              return afterBilling(session);
            })
            .catch((err: unknown) => deps.logger.error({ err, session_id: sessionId }, 'billing a response failed'));
        },
        'input_audio_buffer.committed': (event) => {
          const item = event.item_id;
          if (holds && transcribing && typeof item === 'string') void holds.transcriptionStarted(item, 0n);
        },
        'conversation.item.input_audio_transcription.completed': (event) => {
          const item = event.item_id;
          void meter
            .onTranscriptionCompleted(event)
            .then(() => {
              if (typeof item === 'string') holds?.settleTranscription(item);
            })
            .catch((err: unknown) => deps.logger.error({ err, session_id: sessionId }, 'billing a transcription failed'));
        },
        'conversation.item.input_audio_transcription.failed': (event) => {
          if (typeof event.item_id === 'string') holds?.settleTranscription(event.item_id);
        },
        error: (event, session) => {
          observer?.onUpstreamError?.(event);
          // The upstream refused the relay's stop update: closing is the only way left to stop spending.
          if ((event.error as { event_id?: unknown } | undefined)?.event_id === BUDGET_STOP_EVENT_ID) {
            session.close(CloseCode.budgetExceeded, 'budget exceeded', 'budget_exceeded');
          }
        },
      },
      onClientFrame: (type, bytes) => {
        if (type === 'input_audio_buffer.append') meter.onClientAudioAppend(bytes);
        // Text the model will read, counted by frame size (the envelope makes it err high);
        // a large item carries audio, counted as such. No frame is parsed for this.
        else if (type === 'session.update' || type === 'response.create' || type === 'transcription_session.update') meter.onClientText(bytes);
        else if (type === 'conversation.item.create') {
          if (bytes <= TEXT_FRAME_MAX_BYTES) meter.onClientText(bytes);
          else meter.onClientAudioAppend(bytes);
        }
        observer?.onClientFrame?.(type, bytes);
      },
      onUpstreamFrame: (type, bytes) => {
        switch (type) {
          case 'response.output_audio.delta':
          case 'response.audio.delta':
            meter.onUpstreamAudioDelta(bytes);
            break;
          case 'response.output_text.delta':
          case 'response.text.delta':
          case 'response.output_audio_transcript.delta':
          case 'response.audio_transcript.delta':
            meter.onUpstreamTextDelta(bytes);
            break;
        }
        observer?.onUpstreamFrame?.(type, bytes);
      },
      onUpstreamOpen: ({ handshakeMs }) => observer?.onUpstreamOpen?.(handshakeMs),
      onHandshakeFailure: (_f, status, _ms, detail) => {
        // What an operator needs to fix it (wrong host, refused key, TLS), never a header or key.
        deps.logger.warn({ session_id: sessionId, upstream_host: detail.host, status, cause: detail.cause }, 'upstream handshake failed');
        observer?.onHandshakeFailure?.(status);
      },
      onRelayEvent: (event) => observer?.onRelayEvent?.(event),
    };

    // Tool-continued response.create frames go through this plan's own response.create guard
    // (the budget check): see the seam note in src/tools/session-plan.ts.
    const toolPlan = deps.tools
      ? planToolSession(deps.tools, {
          sessionId, user: principal.user, tenant: principal.tenant, model, dialect, locked,
          admitResponse: (event) => hooks.clientGuards?.['response.create']?.(event) ?? { action: 'forward' },
        })
      : null;

    function onSession(event: ParsedEvent): void {
      meter.onSessionUpdated(event);
      const spending = sessionSpending(event);
      if (spending.transcription !== null) transcribing = spending.transcription;
      if (spending.maxOutputTokens !== undefined) sessionMaxOutput = spending.maxOutputTokens;
    }

    let sessionRef: TapSession | null = null;
    let credentialWatch: NodeJS.Timeout | null = null;
    return withToolPlan({
      hooks,
      onCallStarted: (control) => tracker.onStarted(control),
      onStarted: (session) => {
        tracker.onStarted(session);
        sessionRef = session;
        // A credential is checked at connect; cutting a running session when it later expires
        // or is revoked is an operator's choice (CUT_SESSION_ON_CREDENTIAL_EXPIRY).
        if (!config.auth.cutSessionOnCredentialExpiry) return;
        credentialWatch = setInterval(() => {
          void credentialStillValid().then((valid) => {
            if (valid) return;
            session.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'credential_expired', message: 'The credential this session was opened with has expired or was revoked.' }));
            session.close(CloseCode.policyViolation, 'credential expired or revoked', 'credential_expired');
          });
        }, CREDENTIAL_RECHECK_MS);
        credentialWatch.unref();
      },
      // A response cut off without its response.done is billed as an estimate.
      onEnded: async (summary) => {
        if (credentialWatch) clearInterval(credentialWatch);
        try {
          await meter.onSessionEnd({ unacknowledgedRequests: summary.unacknowledgedRequests });
        } finally {
          holds?.releaseAll();
          await tracker.onEnded(summary);
        }
      },
    }, toolPlan);
  };
}
