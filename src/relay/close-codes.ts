/**
 * WebSocket close codes the relay sends to clients, and why. The 44xx/45xx codes mirror the
 * HTTP status the upstream answered its handshake with (4000 + status), so a client can tell
 * "the provider refused" from "the relay refused" at a glance. This table is the documented
 * mapping (README, "Close codes").
 */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policyViolation: 1008,
  messageTooBig: 1009,
  internalError: 1011,
  /** The client sent frames faster than the upstream connection could be opened. */
  queueOverflow: 4008,
  /** The client's budget is exhausted and BUDGET_EXCEEDED_ACTION=close. */
  budgetExceeded: 4402,
  /** No frames in either direction for IDLE_TIMEOUT_MS. */
  idleTimeout: 4000,
  /** MAX_SESSION_MS reached. */
  maxDuration: 4001,
  upstreamUnauthorized: 4401,
  upstreamForbidden: 4403,
  upstreamNotFound: 4404,
  upstreamRateLimited: 4429,
  upstreamServerError: 4502,
  upstreamUnavailable: 4503,
  upstreamTimeout: 4504,
} as const;

export interface HandshakeFailure {
  closeCode: number;
  reason: string;
  error: { type: string; code: string; message: string };
}

/** Maps an upstream handshake failure (HTTP status, or none for a network error / timeout). */
export function mapHandshakeFailure(status: number | 'timeout' | 'network', upstreamCode?: string): HandshakeFailure {
  if (status === 'timeout') {
    return {
      closeCode: CloseCode.upstreamTimeout,
      reason: 'upstream handshake timed out',
      error: { type: 'server_error', code: 'upstream_timeout', message: 'The upstream realtime service did not answer in time.' },
    };
  }
  if (status === 'network') {
    return {
      closeCode: CloseCode.upstreamUnavailable,
      reason: 'upstream unreachable',
      error: { type: 'server_error', code: 'upstream_unavailable', message: 'The upstream realtime service could not be reached.' },
    };
  }
  if (status === 401) {
    return {
      closeCode: CloseCode.upstreamUnauthorized,
      reason: 'upstream rejected the relay credentials',
      error: { type: 'server_error', code: 'upstream_unauthorized', message: 'The upstream service rejected the relay\'s credentials; contact the relay operator.' },
    };
  }
  if (status === 403) {
    return {
      closeCode: CloseCode.upstreamForbidden,
      reason: 'upstream refused access',
      error: { type: 'server_error', code: 'upstream_forbidden', message: 'The upstream service refused access to this model or region.' },
    };
  }
  if (status === 404) {
    return {
      closeCode: CloseCode.upstreamNotFound,
      reason: 'model not found upstream',
      error: { type: 'invalid_request_error', code: upstreamCode ?? 'model_not_found', message: 'The upstream service does not serve the requested model.' },
    };
  }
  if (status === 429) {
    return {
      closeCode: CloseCode.upstreamRateLimited,
      reason: 'upstream rate limit',
      error: { type: 'rate_limit_error', code: upstreamCode ?? 'rate_limit_exceeded', message: 'The upstream service is rate limiting; retry later.' },
    };
  }
  return {
    closeCode: status >= 500 ? CloseCode.upstreamServerError : CloseCode.internalError,
    reason: `upstream handshake failed (${status})`,
    error: { type: 'server_error', code: 'upstream_error', message: `The upstream service answered the connection with HTTP ${status}.` },
  };
}

/**
 * The code to close the client with when the upstream closed. 1005/1006/1015 cannot be sent
 * on the wire, so an abnormal upstream end becomes 1011.
 */
export function clientCodeForUpstreamClose(code: number): number {
  if (code === 1005 || code === 1006 || code === 1015 || code < 1000) return CloseCode.internalError;
  return code;
}

/** Close reasons are limited to 123 bytes by the protocol. */
export function clampReason(reason: string): string {
  const b = Buffer.from(reason);
  return b.length <= 123 ? reason : b.subarray(0, 120).toString('utf8').replace(/\uFFFD*$/, '') + '...';
}
