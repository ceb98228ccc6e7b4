/**
 * Waiting for a decision. Approvals live in the database (ApprovalStore), so a decision taken
 * on any instance reaches the session that waits on another: the waiter is woken at once by a
 * decision taken in this process, and otherwise finds it by polling the row (APPROVAL_POLL_MS).
 * At the deadline the row is marked expired with a conditional update, so a late decision and
 * the timeout cannot both win.
 */
import { ApprovalStore, type Approval, type DecideResult } from './store';

export const APPROVAL_POLL_MS = 1000;

export class ApprovalBroker {
  private readonly wakers = new Map<string, () => void>();

  constructor(
    readonly store: ApprovalStore,
    private readonly pollMs = APPROVAL_POLL_MS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Decides, then wakes the session waiting in this process (other instances find it by polling). */
  async decide(id: string, approve: boolean, reason: string | null, decidedBy: string): Promise<DecideResult> {
    const result = await this.store.decide(id, approve, reason, decidedBy);
    if (result.ok) this.wakers.get(id)?.();
    return result;
  }

  /**
   * Resolves with the approval once it is decided or expired. `signal` aborts the wait (the
   * session ended): the approval is then expired so no one decides a call that can no longer run.
   */
  async wait(approval: Approval, signal: AbortSignal): Promise<Approval> {
    const id = approval.id;
    try {
      for (;;) {
        if (signal.aborted) {
          await this.store.expire(id);
          return (await this.store.get(id)) ?? { ...approval, status: 'expired' };
        }
        const left = approval.expires_at - this.now();
        if (left <= 0) {
          await this.store.expire(id);
          // Either we expired it or a decision landed just before: the row says which.
          return (await this.store.get(id)) ?? { ...approval, status: 'expired' };
        }
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            this.wakers.delete(id);
            resolve();
          };
          const timer = setTimeout(done, Math.min(left, this.pollMs));
          signal.addEventListener('abort', done);
          this.wakers.set(id, done);
        });
        const current = await this.store.get(id);
        if (current && current.status !== 'pending') return current;
      }
    } finally {
      this.wakers.delete(id);
    }
  }
}
