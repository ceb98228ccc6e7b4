import type { IncomingHttpHeaders } from 'node:http';
import { requestsBetaDialect } from '../../auth/credentials';
import type { ApiDialect } from '../../config/config';

/**
 * The dialect a client speaks: beta when it sends `OpenAI-Beta: realtime=v1` (server clients)
 * or offers the `openai-beta.realtime-v1` subprotocol (browsers cannot set headers); GA
 * otherwise, as OpenAI itself decides.
 */
export function clientDialectOf(headers: IncomingHttpHeaders): ApiDialect {
  return requestsBetaDialect(headers) ? 'beta' : 'ga';
}

/**
 * The dialect to speak upstream for a client: its own when the upstream accepts it (no
 * translation), else the upstream's first accepted dialect (the relay translates).
 */
export function upstreamDialectFor(client: ApiDialect, accepted: readonly ApiDialect[]): ApiDialect {
  return accepted.includes(client) ? client : (accepted[0] ?? client);
}
