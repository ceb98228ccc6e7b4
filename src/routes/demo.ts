/**
 * `GET /demo`: a static browser page for trying the relay with a microphone (public/demo). It
 * holds no secret: the user pastes a relay API key, the page trades it for an ephemeral key at
 * POST /v1/realtime/client_secrets and reads costs from GET /v1/usage, like any app would.
 *
 * Only a fixed list of files is served, so no request path ever reaches the filesystem. Off
 * (every path 404) when `config.demoEnabled` is false, the default in production.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

export interface DemoRoutesOptions {
  enabled: boolean;
  /** Directory holding index.html, demo.js, demo-worklet.js and demo.css; defaults to public/demo. */
  dir?: string;
}

// A Map, not an object literal: a request for `constructor` must not find Object.prototype's.
const FILES: ReadonlyMap<string, string> = new Map([
  ['index.html', 'text/html; charset=utf-8'],
  ['demo.js', 'text/javascript; charset=utf-8'],
  ['demo-worklet.js', 'text/javascript; charset=utf-8'],
  ['demo.css', 'text/css; charset=utf-8'],
]);

// Same-origin only: the page talks to nothing but this relay (mint, usage, the WebSocket;
// 'self' covers ws(s) to the same host in current browsers). Set here rather than left to any
// app-wide default so the page keeps working whatever policy the rest of the relay sends.
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function defaultDir(): string {
  // Sources run from src/routes, the build from dist/src/routes: find public/demo from either.
  const candidates = [path.resolve(__dirname, '..', '..', 'public', 'demo'), path.resolve(__dirname, '..', '..', '..', 'public', 'demo')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? candidates[0];
}

export const demoRoutes: FastifyPluginAsync<DemoRoutesOptions> = async (app, opts) => {
  if (!opts.enabled) return;
  const dir = opts.dir ?? defaultDir();

  async function send(reply: FastifyReply, name: string): Promise<FastifyReply> {
    const type = FILES.get(name);
    if (type === undefined) {
      reply.callNotFound();
      return reply;
    }
    const body = await readFile(path.join(dir, name));
    return reply
      .header('content-type', type)
      // A demo is edited and reloaded; stale scripts would only confuse.
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('content-security-policy', CSP)
      .send(body);
  }

  app.get('/demo', (_req, reply) => send(reply, 'index.html'));
  app.get('/demo/', (_req, reply) => send(reply, 'index.html'));
  app.get<{ Params: { file: string } }>(
    '/demo/:file',
    { schema: { params: { type: 'object', properties: { file: { type: 'string', maxLength: 64 } }, required: ['file'] } } },
    (req, reply) => send(reply, req.params.file),
  );
};
