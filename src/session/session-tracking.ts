/**
 * The session's place in the spend log (one `sessions` row, started and completed) and in the
 * live directory (listed while it runs, closable by an administrator). Failures here are logged
 * and never end or delay a session: the ledger, not this log, is what bills.
 */
import type { Logger } from 'pino';
import { billingKeyId, type Principal } from '../auth/principal';
import { CloseCode } from '../relay/close-codes';
import type { LiveSessionDirectory } from '../relay/live-sessions';
import { errorEvent } from '../relay/protocol-errors';
import type { SessionSummary, TapSession } from '../relay/relay-session';
import type { SessionLogStore } from '../storage/sessions';

export interface SessionTrackingDeps {
  sessionLog?: SessionLogStore;
  live?: LiveSessionDirectory;
  logger: Logger;
}

export interface SessionTracker {
  /** The session, or a WebRTC call's sideband control: what an admin's close needs. */
  onStarted(session: TapSession): void;
  onEnded(summary: SessionSummary): Promise<void>;
}

/** The close code of a session an administrator ended from the console. */
export const CLOSED_BY_ADMIN = CloseCode.policyViolation;

export function trackSession(
  deps: SessionTrackingDeps,
  ctx: { sessionId: string; principal: Principal; model: string; provider: string; transport?: string },
): SessionTracker {
  const { sessionId, principal, model } = ctx;
  const transport = ctx.transport ?? 'websocket';
  let started: Promise<void> = Promise.resolve();
  let startedAt = Date.now();

  return {
    onStarted(session) {
      startedAt = Date.now();
      const record = { id: sessionId, user: principal.user, tenant: principal.tenant ?? null, keyId: billingKeyId(principal) ?? null, model, transport, startedAt };
      if (deps.sessionLog) {
        started = deps.sessionLog
          .start({ ...record, provider: ctx.provider })
          .catch((err: unknown) => deps.logger.warn({ err, session_id: sessionId }, 'spend log: could not record the session start'));
      }
      deps.live?.add(record, {
        close: (reason) => {
          session.sendToClient(errorEvent({ type: 'invalid_request_error', code: 'session_closed_by_admin', message: 'An administrator closed this session.' }));
          session.close(CLOSED_BY_ADMIN, reason, 'closed_by_admin');
        },
      });
    },
    async onEnded(summary) {
      deps.live?.remove(sessionId);
      if (!deps.sessionLog) return;
      // The end must not overtake the start's INSERT.
      await started;
      await deps.sessionLog
        .end(sessionId, { endedAt: startedAt + summary.durationMs, durationMs: summary.durationMs, closeCode: summary.clientCloseCode, endReason: summary.endReason })
        .catch((err: unknown) => deps.logger.warn({ err, session_id: sessionId }, 'spend log: could not record the session end'));
    },
  };
}
