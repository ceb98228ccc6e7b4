/**
 * A 401 on /admin from a relay that has no RELAY_ADMIN_TOKEN says so: otherwise someone who
 * exported the token after starting the relay reads only "Unrecognised credential." and guesses.
 * Done in onSend so every admin route (each authenticates in its own hook) gets it unchanged.
 */
import type { FastifyInstance } from 'fastify';

export const NO_ADMIN_TOKEN_HINT =
  ' This relay has no admin token configured (RELAY_ADMIN_TOKEN was not set when it started): set it and restart, or use an API key with the admin scope (outside production the first start prints one).';

export function installAdminTokenHint(app: FastifyInstance, adminTokenConfigured: boolean): void {
  if (adminTokenConfigured) return;
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode !== 401 || !request.url.startsWith('/admin') || typeof payload !== 'string') return payload;
    try {
      const body = JSON.parse(payload) as { error?: { message?: unknown } };
      if (typeof body.error?.message !== 'string') return payload;
      body.error.message += NO_ADMIN_TOKEN_HINT;
      return JSON.stringify(body);
    } catch {
      return payload;
    }
  });
}
