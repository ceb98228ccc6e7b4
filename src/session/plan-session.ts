import type { Logger } from 'pino';
import { checkSessionUpdate, checkSystemMessages, instructionsLocked, lockedSessionUpdate, type LockedFieldError } from '../auth/locked-session';
import type { RelayConfig } from '../config/config';
import type { Metering } from '../metering';
import { CloseCode } from '../relay/close-codes';
import { errorEvent, clientEventId, type ProtocolError } from '../relay/protocol-errors';
import type { GuardDecision, ParsedEvent, RelaySession, SessionHooks } from '../relay/relay-session';
import type { SessionContext, SessionPlan } from '../routes/realtime';

export interface SessionObserver {
  /** Per-frame counters (metrics). Must be allocation-free: it runs on the hot path. */
  onClientFrame?(type: string, bytes: number): void;
  onUpstreamFrame?(type: string, bytes: number): void;
  onUpstreamOpen?(handshakeMs: number): void;
  onHandshakeFailure?(status: number | 'timeout' | 'network'): void;
  onUpstreamError?(event: ParsedEvent): void;
  onBilled?(provider: string, model: string): void;
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
}): (ctx: SessionContext) => Promise<SessionPlan> {
  const { config, metering, observer } = deps;
  const dialect = config.upstream.dialect;

  return async ({ sessionId, principal, model, provider, credentialStillValid }) => {
    const meter = metering.newSessionMeter({ sessionId, user: principal.user, tenant: principal.tenant, keyId: principal.keyId, provider: provider.name, model });
    const who = { user: principal.user, tenant: principal.tenant };
    const locked = principal.lockedSession;
    let overBudget = false;

    /** Forwards the event, or refuses it naming the locked field it would change. */
    const lockedDecision = (err: LockedFieldError | null, event: ParsedEvent): GuardDecision =>
      err ? { action: 'reject', error: { type: 'invalid_request_error', ...err, event_id: clientEventId(event) } } : { action: 'forward' };

    const refuseOverBudget = (event: ParsedEvent): GuardDecision => ({
      action: 'reject',
      error: { ...BUDGET_EXCEEDED, event_id: clientEventId(event) },
    });

    /** After each billed response: has this user (or tenant) now crossed a limit? */
    const afterBilling = async (session: RelaySession): Promise<void> => {
      if (overBudget) return;
      const verdict = await metering.guard.check(who);
      if (verdict.ok) return;
      overBudget = true;
      session.sendToClient(errorEvent(BUDGET_EXCEEDED));
      if (config.budgets.exceededAction === 'close') session.close(CloseCode.budgetExceeded, 'budget exceeded', 'budget_exceeded');
    };

    const hooks: SessionHooks = {
      initialUpstreamFrames: locked ? [JSON.stringify(lockedSessionUpdate(locked, dialect))] : [],
      clientGuards: {
        'session.update': (event) => lockedDecision(checkSessionUpdate(locked, event), event),
        // Only with locked instructions: otherwise items are not the relay's business, and their
        // audio content is better left unparsed.
        ...(instructionsLocked(locked)
          ? {
              'conversation.item.create': (event: ParsedEvent): GuardDecision => lockedDecision(checkSystemMessages(locked, event), event),
            }
          : {}),
        'response.create': async (event) => {
          const locking = lockedDecision(checkSessionUpdate(locked, event) ?? checkSystemMessages(locked, event), event);
          if (locking.action === 'reject') return locking;
          if (overBudget) return refuseOverBudget(event);
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
      },
      upstreamTaps: {
        'session.created': (event) => meter.onSessionUpdated(event),
        'session.updated': (event) => meter.onSessionUpdated(event),
        'response.created': (event, session) => {
          const id = (event.response as { id?: unknown } | undefined)?.id;
          if (typeof id === 'string') meter.onResponseCreated(id);
          // Server VAD creates responses without a response.create to refuse: cancel them instead.
          if (overBudget) session.sendToUpstream(JSON.stringify({ type: 'response.cancel' }));
        },
        'response.done': (event, session) => {
          void meter
            .onResponseDone(event)
            .then(() => {
              observer?.onBilled?.(provider.name, model);
              return afterBilling(session);
            })
            .catch((err: unknown) => deps.logger.error({ err, session_id: sessionId }, 'billing a response failed'));
        },
        'conversation.item.input_audio_transcription.completed': (event) => {
          void meter.onTranscriptionCompleted(event).catch((err: unknown) => deps.logger.error({ err, session_id: sessionId }, 'billing a transcription failed'));
        },
        error: (event) => observer?.onUpstreamError?.(event),
      },
      onClientFrame: (type, bytes) => {
        if (type === 'input_audio_buffer.append') meter.onClientAudioAppend(bytes);
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

    let credentialWatch: NodeJS.Timeout | null = null;
    return {
      hooks,
      onStarted: (session) => {
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
      onEnded: (summary) => {
        if (credentialWatch) clearInterval(credentialWatch);
        return meter.onSessionEnd({ unacknowledgedRequests: summary.unacknowledgedRequests });
      },
    };
  };
}
