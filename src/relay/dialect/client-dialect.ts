import type { ApiDialect } from '../../config/config';

/** The subprotocol official browser clients add to ask for the beta interface. */
export const BETA_SUBPROTOCOL = 'openai-beta.realtime-v1';

/**
 * The dialect a client speaks: beta when it sends `OpenAI-Beta: realtime=v1` (server clients)
 * or offers the `openai-beta.realtime-v1` subprotocol (browsers cannot set headers); GA
 * otherwise, as OpenAI itself decides.
 */
export function clientDialectOf(headers: Record<string, string | string[] | undefined>): ApiDialect {
  const joined = (v: string | string[] | undefined): string => (Array.isArray(v) ? v.join(',') : (v ?? ''));
  if (/(^|[\s,;])realtime=v1([\s,;]|$)/i.test(joined(headers['openai-beta']))) return 'beta';
  const protocols = joined(headers['sec-websocket-protocol']).split(',').map((p) => p.trim());
  return protocols.includes(BETA_SUBPROTOCOL) ? 'beta' : 'ga';
}

/**
 * The dialect to speak upstream for a client: its own when the upstream accepts it (no
 * translation), else the upstream's first accepted dialect (the relay translates).
 */
export function upstreamDialectFor(client: ApiDialect, accepted: readonly ApiDialect[]): ApiDialect {
  return accepted.includes(client) ? client : (accepted[0] ?? client);
}
