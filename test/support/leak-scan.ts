/**
 * Key-leak scanner, installed for every test file through jest's `setupFilesAfterEnv`.
 *
 * It watches what the relay hands to the outside world while the suite runs:
 *  - every WebSocket frame (and close reason) sent by a server-side `ws` socket, except the
 *    built-in simulator's sockets, whose peer is the relay and not a client;
 *  - every HTTP response body and header block written through `http.ServerResponse`
 *    (real sockets, refused WebSocket upgrades and Fastify's inject alike), except the
 *    simulator's own HTTP server;
 *  - every byte written to stdout / stderr (pino writes there with `fs.writeSync`, not
 *    through `process.stdout.write`, so both are watched).
 *
 * It looks for upstream keys (`sk-…`), relay API keys (`rk_<id>_<secret>`, tolerated only in
 * the body of the `POST /admin/keys` answer that created them), ephemeral keys (`ek_…`,
 * tolerated only in mint answers), JWTs (never), and the literal admin token and token secret
 * that `relay-instance.ts` configures, plus anything a test registers with `registerSecret`.
 * A finding fails the test that was running (afterEach) or, outside any test, the file
 * (afterAll), naming the channel, route or port, the test and the relay source line.
 *
 * Limits: log lines a test routes into its own stream (`createLogger(level, stream)`) are the
 * test's to check (key-leak.test.ts does, at trace level). jest runs this file's afterAll
 * before a test file's own root-level afterAll hooks (hooks inside describe blocks run first),
 * so teardown done in a root-level afterAll is not checked; only simulator suites have one.
 *
 * Cost: frames and bodies are checked with a few `indexOf` calls on the first 64 KiB (about
 * 2 µs for a typical event, 7 µs for 60 KiB), and audio deltas (base64, the bulk of the
 * traffic) are skipped by a prefix check; regexes run only on a payload holding a marker.
 */
import fs from 'node:fs';
import http from 'node:http';
import WebSocket, { WebSocketServer } from 'ws';
import { RealtimeSimulator } from '../../src/simulator/simulator';

// Copies of relay-instance.ts's values: importing that file would load the whole relay into
// every test file. key-leak.test.ts checks that the two stay equal.
export const KNOWN_ADMIN_TOKEN = 'e2e-admin-token-0123456789abcdef0123';
export const KNOWN_TOKEN_SECRET = 'e2e-relay-token-secret-0123456789abcdef';

const MAX_SCAN_BYTES = 64 * 1024;

export type LeakChannel = 'ws-frame' | 'ws-close' | 'http-body' | 'http-headers' | 'log';
export type LeakKind = 'provider_key' | 'relay_api_key' | 'ephemeral_key' | 'jwt' | 'secret';

export interface LeakFinding {
  channel: LeakChannel;
  kind: LeakKind;
  /** Route, port or stream the payload went out on. */
  where: string;
  /** The running test, or '(outside a test)'. */
  test: string;
  /** The secret, masked, with a little context. */
  excerpt: string;
  /** First relay (src/) frames of the stack that wrote it, when there is one. */
  origin: string;
}

interface Allowance {
  /** Relay API key ids whose secret may appear (the creation answer of that key). */
  rkIds?: ReadonlySet<string>;
  ephemeral?: boolean;
}

const PROVIDER_KEY = /(?<![A-Za-z0-9_-])sk-[A-Za-z0-9-]{8,}/g;
const RELAY_API_KEY = /(?<![A-Za-z0-9_-])rk_([0-9a-f]{16})_[A-Za-z0-9_-]{8,}/g;
const EPHEMERAL_KEY = /(?<![A-Za-z0-9_-])ek_[A-Za-z0-9_.-]{16,}/g;
const JWT = /eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/g;

const MARKERS = ['sk-', 'rk_', 'ek_', 'eyJ'];
const MINT_PATHS = new Set(['/v1/realtime/sessions', '/v1/realtime/client_secrets', '/v1/realtime/transcription_sessions']);

const secrets = new Map<string, string>([
  [KNOWN_ADMIN_TOKEN, 'RELAY_ADMIN_TOKEN'],
  [KNOWN_TOKEN_SECRET, 'RELAY_TOKEN_SECRET'],
]);
let markerBuffers = rebuildMarkers();
let findings: LeakFinding[] = [];

function rebuildMarkers(): Buffer[] {
  return [...MARKERS, ...secrets.keys()].map((m) => Buffer.from(m, 'utf8'));
}

/** Adds a value that must never leave the relay (a JWT_SECRET, a provider key without `sk-`). */
export function registerSecret(value: string, label: string): void {
  if (value.length < 8) throw new Error(`registerSecret: '${label}' is too short to scan for without false alarms`);
  secrets.set(value, label);
  markerBuffers = rebuildMarkers();
}

/** Findings so far, removed from the list: for tests that plant a leak on purpose. */
export function takeFindings(): LeakFinding[] {
  const out = findings;
  findings = [];
  return out;
}

function mask(s: string): string {
  return s.length <= 10 ? '*'.repeat(s.length) : `${s.slice(0, 6)}…(${s.length} chars)`;
}

function currentTest(): string {
  try {
    return expect.getState().currentTestName ?? '(outside a test)';
  } catch {
    return '(outside a test)';
  }
}

/** The stack, at the moment of the write, narrowed to the relay's own files. */
function origin(): string {
  const limit = Error.stackTraceLimit;
  // pino and sonic-boom put many frames between the write and the relay's log call.
  Error.stackTraceLimit = 40;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const frames = stack.split('\n').filter((l) => /[/\\]src[/\\]/.test(l) && !/node_modules/.test(l));
  return frames.slice(0, 3).map((l) => l.trim()).join(' ← ') || '(no relay frame on the stack)';
}

function record(channel: LeakChannel, kind: LeakKind, where: string, text: string, index: number, secret: string): void {
  const before = text.slice(Math.max(0, index - 40), index).replace(/\s+/g, ' ');
  findings.push({ channel, kind, where, test: currentTest(), excerpt: `…${before}[${mask(secret)}]`, origin: origin() });
}

function hasMarker(data: Buffer | string): boolean {
  if (typeof data === 'string') {
    for (const m of MARKERS) if (data.includes(m)) return true;
    for (const s of secrets.keys()) if (data.includes(s)) return true;
    return false;
  }
  for (const m of markerBuffers) if (data.indexOf(m) !== -1) return true;
  return false;
}

function matches(re: RegExp, text: string): RegExpExecArray[] {
  re.lastIndex = 0;
  return [...text.matchAll(re)];
}

/**
 * Scans one payload; records every secret it carries that `allow` does not cover. Exported
 * for the scanner's own tests.
 */
export function scanPayload(channel: LeakChannel, where: string, payload: unknown, allow: Allowance = {}): void {
  let data: Buffer | string;
  if (typeof payload === 'string') data = payload.length > MAX_SCAN_BYTES ? payload.slice(0, MAX_SCAN_BYTES) : payload;
  else if (Buffer.isBuffer(payload)) data = payload.length > MAX_SCAN_BYTES ? payload.subarray(0, MAX_SCAN_BYTES) : payload;
  else if (payload instanceof Uint8Array) data = Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.byteLength, MAX_SCAN_BYTES));
  else if (payload instanceof ArrayBuffer) data = Buffer.from(payload, 0, Math.min(payload.byteLength, MAX_SCAN_BYTES));
  else return;
  if (!hasMarker(data)) return;
  const text = typeof data === 'string' ? data : data.toString('utf8');

  // Ephemeral keys are JWS tokens: the JWT pattern inside one belongs to the key, not a JWT.
  const ekSpans: Array<[number, number]> = [];
  for (const m of matches(EPHEMERAL_KEY, text)) {
    ekSpans.push([m.index, m.index + m[0].length]);
    if (!allow.ephemeral) record(channel, 'ephemeral_key', where, text, m.index, m[0]);
  }
  for (const m of matches(JWT, text)) {
    if (ekSpans.some(([a, b]) => m.index >= a && m.index < b)) continue;
    record(channel, 'jwt', where, text, m.index, m[0]);
  }
  for (const m of matches(RELAY_API_KEY, text)) {
    if (!allow.rkIds?.has(m[1])) record(channel, 'relay_api_key', where, text, m.index, m[0]);
  }
  for (const m of matches(PROVIDER_KEY, text)) record(channel, 'provider_key', where, text, m.index, m[0]);
  for (const [secret, label] of secrets) {
    let i = text.indexOf(secret);
    while (i !== -1) {
      record(channel, 'secret', `${where} (${label})`, text, i, secret);
      i = text.indexOf(secret, i + secret.length);
    }
  }
}

// ---- what counts as the relay's traffic ------------------------------------------------------

/** HTTP servers of simulators: they answer the relay, not clients. */
const upstreamServers = new WeakSet<object>();

function serverOf(socket: unknown): unknown {
  return typeof socket === 'object' && socket !== null ? (socket as { server?: unknown }).server : undefined;
}

function isUpstreamSocket(socket: unknown): boolean {
  const server = serverOf(socket);
  return typeof server === 'object' && server !== null && upstreamServers.has(server);
}

function isAudioDelta(data: unknown): boolean {
  if (typeof data === 'string') {
    const head = data.slice(0, 64);
    return head.includes('audio.delta"') && !head.includes('transcript');
  }
  if (Buffer.isBuffer(data)) {
    const head = data.subarray(0, 64).toString('latin1');
    return head.includes('audio.delta"') && !head.includes('transcript');
  }
  return false;
}

// ---- patches ------------------------------------------------------------------------------------

/*
 * Core modules (http, fs) and process.stdout are shared by every test file a jest worker runs,
 * so their patches are installed at setup and removed in afterAll; the originals are kept on a
 * global symbol so that a file that crashed before afterAll cannot make the next one wrap twice.
 * `ws` and the simulator are per-file module instances: patching them needs no undo.
 */
const ORIGINALS = Symbol.for('realtime-relay.leak-scan.originals');

type AnyFn = (this: unknown, ...args: unknown[]) => unknown;
interface Patch {
  target: object;
  key: string;
  original: AnyFn;
}
// Kept on the real `http` module, not on globalThis: each test file gets its own global object.
const host = http as unknown as { [ORIGINALS]?: Patch[] };

function patch(target: object, key: string, make: (original: AnyFn) => AnyFn): void {
  const t = target as Record<string, unknown>;
  const original = t[key] as AnyFn;
  t[key] = make(original);
  (host[ORIGINALS] ??= []).push({ target, key, original });
}

function restoreCorePatches(): void {
  for (const p of (host[ORIGINALS] ?? []).reverse()) (p.target as Record<string, unknown>)[p.key] = p.original;
  host[ORIGINALS] = [];
}

function installWebSocketPatch(): void {
  const proto = WebSocket.prototype as unknown as Record<string, unknown>;
  const send = proto.send as AnyFn;
  const close = proto.close as AnyFn;
  const where = (ws: unknown): string => {
    const socket = (ws as { _socket?: { localPort?: number } })._socket;
    return `ws frame to a client (relay port ${socket?.localPort ?? '?'})`;
  };
  const watched = (ws: unknown): boolean => {
    const w = ws as { _isServer?: boolean; _socket?: unknown };
    return w._isServer === true && !isUpstreamSocket(w._socket);
  };
  proto.send = function (this: unknown, data: unknown, ...rest: unknown[]): unknown {
    if (watched(this) && !isAudioDelta(data)) scanPayload('ws-frame', where(this), data);
    return send.call(this, data, ...rest);
  };
  proto.close = function (this: unknown, code?: unknown, reason?: unknown, ...rest: unknown[]): unknown {
    if (reason !== undefined && watched(this)) scanPayload('ws-close', where(this), reason);
    return close.call(this, code, reason, ...rest);
  };

  // The 101 answer is written straight to the socket, not through http.ServerResponse: it is
  // where a selected key-bearing subprotocol would be echoed.
  const server = WebSocketServer.prototype as unknown as Record<string, unknown>;
  const completeUpgrade = server.completeUpgrade as AnyFn;
  server.completeUpgrade = function (this: unknown, ...args: unknown[]): unknown {
    const socket = args[4] as { write: AnyFn; localPort?: number } | undefined;
    if (socket && typeof socket.write === 'function' && !isUpstreamSocket(socket)) {
      const write = socket.write;
      socket.write = function (this: unknown, chunk: unknown, ...rest: unknown[]): unknown {
        socket.write = write;
        scanPayload('http-headers', `101 upgrade (relay port ${socket.localPort ?? '?'})`, chunk);
        return write.call(this, chunk, ...rest);
      };
    }
    return completeUpgrade.apply(this, args);
  };
}

function installSimulatorMark(): void {
  const proto = RealtimeSimulator.prototype;
  const start = proto.start;
  proto.start = async function (this: RealtimeSimulator) {
    const r = await start.call(this);
    const server = (this as unknown as { server?: object | null }).server;
    if (server) upstreamServers.add(server);
    return r;
  };
}

function responseAllowance(res: http.ServerResponse, body: unknown): { where: string; allow: Allowance } {
  const req = res.req as http.IncomingMessage | undefined;
  const method = req?.method ?? '?';
  const path = (req?.url ?? '?').split('?')[0] ?? '?';
  const where = `HTTP ${method} ${path} → ${res.statusCode}`;
  const allow: Allowance = {};
  if (method === 'POST' && MINT_PATHS.has(path) && res.statusCode === 200) allow.ephemeral = true;
  if (method === 'POST' && path === '/admin/keys' && res.statusCode === 201) {
    // Only the key this answer describes: its public id is the body's `id`.
    const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : '';
    const id = /"id"\s*:\s*"([0-9a-f]{16})"/.exec(text)?.[1];
    if (id) allow.rkIds = new Set([id]);
  }
  return { where, allow };
}

function installHttpPatch(): void {
  const proto = http.ServerResponse.prototype;
  const watched = (res: http.ServerResponse): boolean => !isUpstreamSocket(res.socket) && !isUpstreamSocket(res.req?.socket);
  const scanBody = (res: http.ServerResponse, chunk: unknown): void => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function' || !watched(res)) return;
    const { where, allow } = responseAllowance(res, chunk);
    scanPayload('http-body', where, chunk, allow);
  };
  patch(proto, 'write', (original) =>
    function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      scanBody(this as http.ServerResponse, chunk);
      return original.call(this, chunk, ...rest);
    },
  );
  patch(proto, 'end', (original) =>
    function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      const res = this as http.ServerResponse;
      scanBody(res, chunk);
      const out = original.call(this, chunk, ...rest);
      const header = (res as unknown as { _header?: unknown })._header;
      if (typeof header === 'string' && watched(res)) scanPayload('http-headers', responseAllowance(res, '').where, header);
      return out;
    },
  );
}

function installLogPatch(): void {
  const isStd = (fd: unknown): boolean => fd === 1 || fd === 2;
  const fsMut = fs as unknown as Record<string, unknown>;
  patch(fsMut, 'writeSync', (original) =>
    function (this: unknown, fd: unknown, data: unknown, ...rest: unknown[]) {
      if (isStd(fd)) scanPayload('log', `fd ${String(fd)}`, data);
      return original.call(this, fd, data, ...rest);
    },
  );
  patch(fsMut, 'write', (original) =>
    function (this: unknown, fd: unknown, data: unknown, ...rest: unknown[]) {
      if (isStd(fd)) scanPayload('log', `fd ${String(fd)}`, data);
      return original.call(this, fd, data, ...rest);
    },
  );
  for (const [name, stream] of [['stdout', process.stdout], ['stderr', process.stderr]] as const) {
    patch(stream, 'write', (original) =>
      function (this: unknown, data: unknown, ...rest: unknown[]) {
        scanPayload('log', `process.${name}`, data);
        return original.call(this, data, ...rest);
      },
    );
  }
}

function report(list: LeakFinding[]): string {
  return list
    .map((f, i) => `  ${i + 1}. ${f.kind} in ${f.channel} — ${f.where}\n     test: ${f.test}\n     ${f.excerpt}\n     from: ${f.origin}`)
    .join('\n');
}

/** Installs the patches and the afterEach / afterAll checks. Called once per test file. */
export function installLeakScan(): void {
  restoreCorePatches();
  installWebSocketPatch();
  installSimulatorMark();
  installHttpPatch();
  installLogPatch();
  afterEach(() => {
    const found = takeFindings();
    if (found.length > 0) throw new Error(`key leak: ${found.length} secret(s) left the relay during this test:\n${report(found)}`);
  });
  afterAll(async () => {
    // Let servers closed by the file's own afterAll hooks finish writing first.
    await new Promise((r) => setImmediate(r));
    restoreCorePatches();
    const found = takeFindings();
    if (found.length > 0) throw new Error(`key leak: ${found.length} secret(s) left the relay outside any test:\n${report(found)}`);
  });
}

// Loaded first by jest's setupFilesAfterEnv; test files that import it get the same instance.
if (typeof afterEach === 'function' && typeof afterAll === 'function') installLeakScan();
