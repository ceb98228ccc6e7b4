import { CloseCode } from './close-codes';
import type { RelaySession } from './relay-session';

/**
 * The sessions this process is relaying, for graceful drain and for the active-sessions gauge.
 */
export class SessionRegistry {
  private readonly sessions = new Set<RelaySession>();
  private emptyWaiters: Array<() => void> = [];
  private drainingSince: number | null = null;

  get size(): number {
    return this.sessions.size;
  }

  get draining(): boolean {
    return this.drainingSince !== null;
  }

  add(session: RelaySession): void {
    this.sessions.add(session);
  }

  delete(session: RelaySession): void {
    this.sessions.delete(session);
    if (this.sessions.size === 0) {
      const waiters = this.emptyWaiters;
      this.emptyWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once no session is left, or after `ms`. Returns whether it emptied in time. */
  waitUntilEmpty(ms: number): Promise<boolean> {
    if (this.sessions.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.emptyWaiters = this.emptyWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.emptyWaiters.push(done);
    });
  }

  /**
   * Stops admitting sessions, lets the open ones finish for up to `timeoutMs`, then closes the
   * rest with 1001 (going away) and waits for them to settle their in-flight responses.
   */
  async drain(timeoutMs: number, settleMs: number): Promise<{ closedByRelay: number }> {
    this.drainingSince ??= Date.now();
    if (await this.waitUntilEmpty(timeoutMs)) return { closedByRelay: 0 };
    const rest = [...this.sessions];
    for (const s of rest) s.close(CloseCode.goingAway, 'relay shutting down', 'drained');
    await this.waitUntilEmpty(settleMs + 2000);
    return { closedByRelay: rest.length };
  }
}
