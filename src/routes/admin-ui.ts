/**
 * `GET /admin/ui`: the operator console, static files from public/admin. It holds no secret and
 * needs none to load: the operator signs in on the page with the admin token or an admin-scope
 * key, which the page keeps in sessionStorage and sends as a bearer header to the admin API.
 *
 * Only a fixed list of files is served, so no request path reaches the filesystem. The chart
 * library (uPlot) is served from node_modules, never from a CDN.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyPluginAsync, FastifyReply } from 'fastify';

export interface AdminUiRoutesOptions {
  /** Directory holding index.html, admin.js and admin.css; defaults to public/admin. */
  dir?: string;
}

/** The console's own files; a Map so `constructor` finds nothing. */
const FILES: ReadonlyMap<string, string> = new Map([
  ['index.html', 'text/html; charset=utf-8'],
  ['admin.js', 'text/javascript; charset=utf-8'],
  ['admin.css', 'text/css; charset=utf-8'],
]);

/** Files from the uPlot package, under /admin/ui/vendor/. */
const VENDOR: ReadonlyMap<string, { file: string; type: string }> = new Map([
  ['uPlot.iife.min.js', { file: 'uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' }],
  ['uPlot.min.css', { file: 'uPlot.min.css', type: 'text/css; charset=utf-8' }],
]);

function publicDir(): string {
  // Sources run from src/routes, the build from dist/src/routes: find public/admin from either.
  const candidates = [path.resolve(__dirname, '..', '..', 'public', 'admin'), path.resolve(__dirname, '..', '..', '..', 'public', 'admin')];
  return candidates.find((d) => existsSync(path.join(d, 'index.html'))) ?? candidates[0];
}

function uplotDir(): string {
  return path.dirname(require.resolve('uplot/dist/uPlot.iife.min.js'));
}

export const adminUiRoutes: FastifyPluginAsync<AdminUiRoutesOptions> = async (app, opts) => {
  const dir = opts.dir ?? publicDir();
  const vendorDir = uplotDir();

  async function send(reply: FastifyReply, file: string, type: string): Promise<FastifyReply> {
    const body = await readFile(file);
    return reply
      .header('content-type', type)
      .header('cache-control', 'no-cache')
      .header('referrer-policy', 'no-referrer')
      .send(body);
  }

  const index = (_req: unknown, reply: FastifyReply): Promise<FastifyReply> => send(reply, path.join(dir, 'index.html'), 'text/html; charset=utf-8');
  app.get('/admin/ui', index);
  app.get('/admin/ui/', index);
  app.get<{ Params: { file: string } }>(
    '/admin/ui/:file',
    { schema: { params: { type: 'object', properties: { file: { type: 'string', maxLength: 64 } }, required: ['file'] } } },
    async (req, reply) => {
      const type = FILES.get(req.params.file);
      if (type === undefined) {
        reply.callNotFound();
        return reply;
      }
      return send(reply, path.join(dir, req.params.file), type);
    },
  );
  app.get<{ Params: { file: string } }>(
    '/admin/ui/vendor/:file',
    { schema: { params: { type: 'object', properties: { file: { type: 'string', maxLength: 64 } }, required: ['file'] } } },
    async (req, reply) => {
      const v = VENDOR.get(req.params.file);
      if (v === undefined) {
        reply.callNotFound();
        return reply;
      }
      return send(reply, path.join(vendorDir, v.file), v.type);
    },
  );
};
