import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HTTPMethods } from 'fastify';
import { createRelay, type Relay } from '../../src/app';
import { loadConfig } from '../../src/config/config';

interface Operation {
  security?: Record<string, string[]>[];
  responses: Record<string, { description: string; content?: Record<string, { schema?: unknown }> }>;
  tags?: string[];
}

interface OpenApiDoc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; scheme?: string }> };
  security: Record<string, string[]>[];
}

/**
 * Every (method, path) Fastify serves, read from `printRoutes`: its tree prints each node's
 * segment indented under its parent, with the methods in parentheses.
 */
function registeredRoutes(tree: string): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const prefixes: string[] = [];
  for (const line of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+)(?: \(([A-Z, ]+)\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1].length / 4;
    const url = (prefixes[depth - 1] ?? '') + m[2];
    prefixes[depth] = url;
    prefixes.length = depth + 1;
    for (const method of m[3]?.split(', ') ?? []) routes.push({ method, url });
  }
  return routes;
}

/**
 * Routes deliberately left out of the document: HEAD twins of GETs, the document itself, the
 * demo's and the admin console's static pages and the CORS preflight catch-all (when CORS_ORIGINS is set).
 */
const notApi = (r: { method: string; url: string }): boolean =>
  r.method === 'HEAD' || /^\/(docs|demo|admin\/ui)(\/|$)/.test(r.url) || (r.method === 'OPTIONS' && r.url === '*');

/**
 * Routes known to declare no schema (reported to the lead), documented as "Default Response"
 * meanwhile. GET /metrics answers Prometheus text, not JSON.
 */
const KNOWN_WITHOUT_SCHEMA: readonly string[] = [];

const toOpenApiPath = (url: string): string => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

describe('OpenAPI document at /docs/json', () => {
  let relay: Relay;
  let spool: string;
  let doc: OpenApiDoc;
  let routes: { method: string; url: string }[];

  beforeAll(async () => {
    spool = mkdtempSync(path.join(os.tmpdir(), 'relay-docs-'));
    relay = await createRelay(
      loadConfig({ NODE_ENV: 'test', UPSTREAM_PROVIDER: 'simulator', DATABASE_URL: 'sqlite::memory:', SPOOL_DIR: spool, LOG_LEVEL: 'silent', PORT: '0', HOST: '127.0.0.1' }),
    );
    await relay.app.ready();
    routes = registeredRoutes(relay.app.printRoutes({ commonPrefix: false }));
    const res = await relay.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.json<OpenApiDoc>();
  });

  afterAll(async () => {
    await relay.shutdown();
    rmSync(spool, { recursive: true, force: true });
  });

  it('reads the route table correctly', () => {
    // Guards the printRoutes parsing itself: every route found must be one Fastify serves.
    expect(routes.length).toBeGreaterThan(10);
    for (const r of routes) expect(relay.app.hasRoute({ method: r.method as HTTPMethods, url: r.url })).toBe(true);
    expect(routes).toContainEqual({ method: 'POST', url: '/v1/realtime/sessions' });
    expect(routes).toContainEqual({ method: 'DELETE', url: '/admin/keys/:id' });
  });

  it('is OpenAPI 3 with a bearer security scheme required by default', () => {
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe('realtime-relay');
    expect(doc.info.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.security).toEqual([{ bearerAuth: [] }]);
  });

  it('documents every HTTP route Fastify registered, and nothing else', () => {
    const expected = routes
      .filter((r) => !notApi(r))
      .map((r) => `${r.method} ${toOpenApiPath(r.url)}`)
      .sort();
    const documented = Object.entries(doc.paths)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    expect(documented).toEqual(expected);
    expect(Object.keys(doc.paths).some((p) => p.startsWith('/docs'))).toBe(false);
  });

  it('gives every operation a declared response (no route without a schema)', () => {
    const undeclared: string[] = [];
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const declared = Object.values(op.responses).some((r) => r.content !== undefined) || op.responses['101'] !== undefined;
        if (!declared) undeclared.push(`${method.toUpperCase()} ${p}`);
      }
    }
    // Each entry fails this test once its route gains a schema: then delete it from the list.
    expect(undeclared.sort()).toEqual([...KNOWN_WITHOUT_SCHEMA].sort());
  });

  it('serves the document with the API security headers', async () => {
    const res = await relay.app.inject({ method: 'GET', url: '/docs/json' });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  it('documents the WebSocket endpoint as a GET answered by 101', () => {
    const op = doc.paths['/v1/realtime']?.get;
    expect(op).toBeDefined();
    expect(op?.responses['101']).toMatchObject({ description: expect.stringMatching(/Switching Protocols/) });
    expect(op?.responses['4XX']?.content?.['application/json']).toBeDefined();
  });

  it('marks the health probes as public and the rest as bearer-protected', () => {
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(doc.paths['/readyz'].get.security).toEqual([]);
    expect(doc.paths['/admin/keys'].post.security).toBeUndefined();
  });

  it('documents CSV as an alternative answer of the usage reports', () => {
    for (const p of ['/v1/usage', '/admin/usage']) {
      const content = doc.paths[p].get.responses['200'].content ?? {};
      expect(Object.keys(content).sort()).toEqual(['application/json', 'text/csv']);
    }
  });

  it('uses path parameters in OpenAPI syntax', () => {
    expect(doc.paths['/admin/budgets/{scope}/{id}']).toBeDefined();
    expect(Object.keys(doc.paths).filter((p) => p.includes(':'))).toEqual([]);
  });
});
