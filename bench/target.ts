/**
 * The process under test, pinned to its own core by the orchestrator: either the full relay
 * (`createRelay`: identity, metering on a SQLite ledger, every route) or the bare ws-to-ws pipe,
 * the floor any relay built on `ws` can reach.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { writeHeapSnapshot } from 'node:v8';
import websocket from '@fastify/websocket';
import Fastify from 'fastify';
import WebSocket, { WebSocketServer } from 'ws';
import { createRelay, type Relay } from '../src/app';
import type { Principal } from '../src/auth/principal';
import { loadConfig, type RelayConfig, type UpstreamMasking } from '../src/config/config';
import { RelaySession } from '../src/relay/relay-session';
import { SessionRegistry } from '../src/relay/session-registry';
import { realtimeRoutes } from '../src/routes/realtime';
import { createLogger } from '../src/logging';
import { openMetering } from '../src/metering';
import { createSessionPlanner } from '../src/session/plan-session';
import { openDatabase } from '../src/storage/database';
import { createProvider } from '../src/upstream';
import { upstreamMaskGenerator } from '../src/upstream/connect';
import { sampleProcess, type TargetApi, type TargetKind } from './lib/protocol';
import { serve } from './lib/rpc';

const OPEN = 1;
const REPO = path.resolve(__dirname, '..');

interface Running {
  kind: TargetKind;
  baseUrl: string;
  sessions(): number;
  stop(): Promise<void>;
}

let running: Running | null = null;
/** Set by `start`: the bare pipe masks as the relay does, so both do the same work per frame. */
let upstreamMasking: UpstreamMasking = 'auto';

function relayConfig(upstreamBaseUrl: string, dataDir: string, adminToken: string, translated = false): RelayConfig {
  return loadConfig({
    UPSTREAM_MASKING: upstreamMasking,
    // Production settings, as deployed: no simulator, no demo page, a real (here: local) upstream.
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: '0',
    // Info logs only at session open/close; warn keeps the log file small without touching the frame path.
    LOG_LEVEL: process.env.BENCH_RELAY_LOG_LEVEL ?? 'warn',
    // Off: a saturated load generator answers pings late, and the relay rightly cuts such peers
    // after a missed interval; that would measure the load generator, not the data path.
    PING_INTERVAL_MS: '0',
    UPSTREAM_PROVIDER: 'openai',
    UPSTREAM_API_KEY: 'sk-bench-upstream',
    UPSTREAM_BASE_URL: upstreamBaseUrl,
    DATABASE_URL: `sqlite:${path.join(dataDir, 'relay.db')}`,
    SPOOL_DIR: path.join(dataDir, 'spool'),
    PRICES_FILE: path.join(REPO, 'config', 'prices.json'),
    MODEL_LIFECYCLE_FILE: path.join(REPO, 'config', 'model-lifecycle.json'),
    RELAY_TOKEN_SECRET: randomBytes(32).toString('base64url'),
    RELAY_ADMIN_TOKEN: adminToken,
    // One bench user opens up to 1,000 sessions at once; per-user limits are not what is measured.
    MAX_SESSIONS_PER_USER: '100000',
    MAX_SESSIONS_PER_KEY: '100000',
    CONNECTIONS_PER_MINUTE_PER_USER: '1000000',
    // --translated: a compatible upstream that accepts beta only, so every (GA) bench client is
    // translated: its appends pass as they are, the upstream's beta deltas are renamed by splicing.
    ...(translated ? { UPSTREAM_PROVIDER: 'compatible', UPSTREAM_DIALECTS: 'beta' } : {}),
  });
}

async function startRelay(upstreamBaseUrl: string, dataDir: string, adminToken: string, kind: 'relay' | 'relay-translated' | 'relay-translated-up' = 'relay'): Promise<Running> {
  // relay-translated is the plain relay (GA-only upstream) whose clients say they speak beta.
  const relay: Relay = await createRelay(relayConfig(upstreamBaseUrl, dataDir, adminToken, kind === 'relay-translated-up'));
  const baseUrl = await relay.listen();
  return {
    kind,
    baseUrl,
    sessions: () => relay.services.sessions.size,
    stop: () => relay.shutdown(),
  };
}

/** The floor: accept, dial the upstream, forward `message` both ways as text. Nothing else. */
async function startPipe(upstreamBaseUrl: string): Promise<Running> {
  const upstreamWs = upstreamBaseUrl.replace(/^http/, 'ws');
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 16 * 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  let open = 0;
  wss.on('connection', (client) => {
    open++;
    const url = `${upstreamWs}/realtime?model=gpt-realtime`;
    const upstream = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, generateMask: upstreamMaskGenerator(url, upstreamMasking) });
    // Frames sent before the upstream is open would otherwise be lost; the relay queues them too.
    const early: Buffer[] = [];
    client.on('message', (data: Buffer) => {
      if (upstream.readyState === OPEN) upstream.send(data, { binary: false });
      else early.push(data);
    });
    upstream.on('open', () => {
      for (const d of early) upstream.send(d, { binary: false });
      early.length = 0;
    });
    upstream.on('message', (data: Buffer) => {
      if (client.readyState === OPEN) client.send(data, { binary: false });
    });
    let closed = false;
    const end = (): void => {
      if (closed) return;
      closed = true;
      open--;
      if (client.readyState === OPEN) client.close(1000);
      if (upstream.readyState === OPEN) upstream.close(1000);
      else if (upstream.readyState === 0) upstream.terminate();
    };
    client.on('close', end);
    client.on('error', end);
    upstream.on('close', end);
    upstream.on('error', end);
  });
  return onBareWs('pipe', wss, () => open);
}

/**
 * Diagnostic: the realtime route alone in Fastify (as the relay-core tests build it), without
 * identity, metering, limits or metrics. Relay minus this = what those layers cost per frame.
 */
async function startRelayCore(upstreamBaseUrl: string, dataDir: string, adminToken: string, metered = false): Promise<Running> {
  const config = relayConfig(upstreamBaseUrl, dataDir, adminToken);
  // With `metered`: the session plan the relay builds (metering, budget guard), nothing else.
  const planSession = metered
    ? createSessionPlanner({ config, metering: await openMetering({ db: await openDatabase(config.storage.databaseUrl), config }), logger: createLogger('warn') })
    : undefined;
  const provider = createProvider(config.upstream);
  const sessions = new SessionRegistry();
  const app = Fastify({ logger: false });
  await app.register(websocket, { options: { maxPayload: config.relay.maxFrameBytes * 2 + 1024 * 1024, perMessageDeflate: false } });
  const principal: Principal = { user: 'bench-user', scopes: ['realtime'], kind: 'api_key', keyId: 'bench-key' };
  await app.register(realtimeRoutes, { config, provider, sessions, authenticate: async () => principal, planSession });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { kind: metered ? 'relay-core-metered' : 'relay-core', baseUrl: `http://127.0.0.1:${port}`, sessions: () => sessions.size, stop: () => app.close() };
}

/** Diagnostic: RelaySession with no hooks on a bare ws server: the session class against the pipe. */
async function startSessionOnWs(upstreamBaseUrl: string, dataDir: string, adminToken: string): Promise<Running> {
  const config = relayConfig(upstreamBaseUrl, dataDir, adminToken);
  const provider = createProvider(config.upstream);
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: config.relay.maxFrameBytes * 2 + 1024 * 1024 });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  let open = 0;
  let counter = 0;
  wss.on('connection', (client) => {
    open++;
    const sessionId = `bench_${++counter}`;
    const session = new RelaySession({ sessionId, client, upstream: provider.realtimeTarget('gpt-realtime', sessionId), limits: config.relay, connectTimeoutMs: config.upstream.connectTimeoutMs });
    void session.run().then(() => {
      open--;
    });
  });
  return onBareWs('session-ws', wss, () => open);
}

/** A target served by a plain ws server (the pipe, the session class alone). */
function onBareWs(kind: TargetKind, wss: WebSocketServer, sessions: () => number): Running {
  const address = wss.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    kind,
    baseUrl: `http://127.0.0.1:${port}`,
    sessions,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

async function settleGc(): Promise<void> {
  const gc = globalThis.gc;
  if (!gc) return;
  // Several passes: weak callbacks and finalizers run between them, freeing a little more each time.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}

serve<TargetApi>({
  start: async ({ kind, upstreamBaseUrl, dataDir, adminToken, upstreamMasking: masking }) => {
    if (running) throw new Error('already started');
    upstreamMasking = masking;
    const starters: Record<TargetKind, () => Promise<Running>> = {
      relay: () => startRelay(upstreamBaseUrl, dataDir, adminToken),
      pipe: () => startPipe(upstreamBaseUrl),
      'relay-core': () => startRelayCore(upstreamBaseUrl, dataDir, adminToken),
      'relay-core-metered': () => startRelayCore(upstreamBaseUrl, dataDir, adminToken, true),
      'session-ws': () => startSessionOnWs(upstreamBaseUrl, dataDir, adminToken),
      'relay-translated': () => startRelay(upstreamBaseUrl, dataDir, adminToken, 'relay-translated'),
      'relay-translated-up': () => startRelay(upstreamBaseUrl, dataDir, adminToken, 'relay-translated-up'),
    };
    running = await starters[kind]();
    return { baseUrl: running.baseUrl };
  },
  sample: async ({ gc }) => {
    if (gc) await settleGc();
    return sampleProcess();
  },
  heapSnapshot: async ({ file }) => {
    await settleGc();
    return { file: writeHeapSnapshot(file) };
  },
  openSessions: async () => ({ sessions: running?.sessions() ?? 0 }),
  stop: async () => {
    await running?.stop();
    running = null;
    // Exit on the next turn so the answer gets out first; exiting also writes a --cpu-prof profile.
    setTimeout(() => process.exit(0), 50);
    return { stopped: true };
  },
});
