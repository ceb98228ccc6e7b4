/**
 * Provider-mode minting (`"mode": "provider"`) for a beta-era caller of `POST /v1/realtime/sessions`
 * when the upstream serves only GA: the beta session config becomes a GA `client_secrets`
 * request, and the GA answer `{value, expires_at, session}` becomes the beta session object
 * with `client_secret: {value, expires_at}`. (Relay-mode minting needs nothing of this: its
 * locked configuration is dialect-neutral and rendered in the upstream's dialect at connect.)
 */
import { isObject, reshapeSession, type JsonObject } from './shapes';

export function gaMintBodyFromBeta(session: JsonObject, expiresAfter: unknown): JsonObject {
  const { client_secret: _secret, ...config } = session;
  return {
    ...(expiresAfter !== undefined ? { expires_after: expiresAfter } : {}),
    session: reshapeSession(config, 'ga', 'client'),
  };
}

export function betaMintFromGa(answer: unknown): unknown {
  if (!isObject(answer)) return answer;
  const session = isObject(answer.session) ? reshapeSession(answer.session, 'beta', 'server') : {};
  return {
    ...session,
    object: 'realtime.session',
    client_secret: { value: answer.value, expires_at: answer.expires_at },
  };
}
