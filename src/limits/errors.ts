import { HttpError } from '../http/errors';
import type { RateLimitDecision } from '../auth/rate-limit';

export type LimitCode = 'too_many_sessions' | 'connection_rate_exceeded' | 'too_many_failed_authentications';

/**
 * A 429 refusal of a new session. Carries the Retry-After it warrants, which the HTTP layer
 * turns into the header (see http-hardening.ts): `admit` throws before a reply exists.
 */
export class LimitExceededError extends HttpError {
  constructor(
    readonly limitCode: LimitCode,
    message: string,
    /** Seconds; absent when no wait is known to help (a session slot frees only when one ends). */
    readonly retryAfterS?: number,
  ) {
    super(429, limitCode, message, 'rate_limit_error');
    this.name = 'LimitExceededError';
  }
}

export function tooManySessions(scope: 'user' | 'key', limit: number): LimitExceededError {
  const who = scope === 'user' ? 'This user' : 'This key';
  return new LimitExceededError('too_many_sessions', `${who} already has ${limit} open realtime sessions, the most allowed; close one before opening another.`);
}

export function connectionRateExceeded(d: RateLimitDecision): LimitExceededError {
  return new LimitExceededError(
    'connection_rate_exceeded',
    `Too many realtime connections: at most ${d.limit} per minute per user. Retry later.`,
    Math.max(1, Math.ceil(d.resetMs / 1000)),
  );
}
