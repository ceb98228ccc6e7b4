import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { prng, randomId } from './ids';
import { isObject, type JsonObject } from './json';
import {
  apiError, mintBetaSession, mintClientSecret, mintTranscriptionSession, GA_DEFAULT_MODEL, TRANSCRIBE_MODEL,
  type HttpAnswer, type MintContext, type MintedKey,
} from './mint';
import { SimulatedSession, type SessionHost } from './session';
import {
  NO_FAULTS, type Dialect, type ReceivedClientEvent, type SimulatedConnectionInfo, type SimulatorFaults, type SimulatorLogger,
  type SimulatorOptions, type SimulatorStats,
} from './types';
import { addUsage, emptyTotals, type RealtimeUsage } from './usage';
import { SimulatedCall } from './webrtc/call';
import { CALLS_PATHS, hangupCallId, readCallOffer } from './webrtc/calls-http';

export const DEFAULT_MODELS = [
  'gpt-realtime',
  'gpt-realtime-mini',
  'gpt-realtime-2',
  'gpt-realtime-1.5',
  'gpt-4o-realtime-preview-2024-10-01',
  'gpt-4o-realtime-preview-2024-12-17',
  'gpt-4o-realtime-preview-2025-06-03',
  'gpt-4o-mini-realtime-preview-2024-12-17',
];

const SILENT: SimulatorLogger = { info: () => undefined, warn: () => undefined };
const MAX_RECEIVED_EVENTS = 50_000;
const MAX_BODY_BYTES = 1 << 20;
const RATE_LIMITS = { requests: 10_000, tokens: 2_000_000 };

interface Route {
  model?: string;
  callId?: string;
  transcription: boolean;
  /** The Azure preview path only speaks the beta protocol. */
  forceBeta: boolean;
}

type AuthResult = { ok: true; minted?: MintedKey } | { ok: false; message: string };

interface Entry {
  session: SimulatedSession;
  info: SimulatedConnectionInfo;
}

/** In-process fake of the OpenAI Realtime WebSocket API (and the Azure / CometAPI variants of it). */
export class RealtimeSimulator {
  readonly stats: SimulatorStats = {
    connectionsOpened: 0,
    connectionsClosed: 0,
    responses: 0,
    responseDoneSent: 0,
    cancelled: 0,
    mintedKeys: 0,
    usageTotals: emptyTotals(),
    usageByClientRequestId: new Map(),
    receivedClientEvents: [],
    lastCloseFromClient: new Map(),
    callsCreated: 0,
    callHangups: 0,
  };

  private readonly opts: Required<Omit<SimulatorOptions, 'apiKey' | 'models' | 'seed' | 'dialects'>> & { apiKey?: string };
  private readonly dialects: ReadonlySet<Dialect>;
  private readonly modelList: string[];
  private readonly families: string[];
  private readonly random: () => number;
  private readonly wss: WebSocketServer;
  private server: Server | null = null;
  private port = 0;
  private faultState: SimulatorFaults = { ...NO_FAULTS };
  private readonly sessions = new Map<string, Entry>();
  private readonly liveCalls = new Map<string, SimulatedCall>();
  private readonly minted = new Map<string, MintedKey>();
  private readonly stalledSockets = new Set<Duplex>();
  private readonly stallTimers = new Set<NodeJS.Timeout>();
  private connectionCounter = 0;
  private used = { requests: 0, tokens: 0 };
  private readonly host: SessionHost;

  constructor(options: SimulatorOptions = {}) {
    this.opts = {
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      audioChunkMs: options.audioChunkMs ?? 100,
      deltaIntervalMs: options.deltaIntervalMs ?? 5,
      logger: options.logger ?? SILENT,
      now: options.now ?? Date.now,
      ...(options.apiKey !== undefined ? { apiKey: options.apiKey } : {}),
    };
    if (!(this.opts.audioChunkMs > 0)) throw new RangeError('audioChunkMs must be positive');
    this.dialects = new Set(options.dialects ?? ['ga', 'beta']);
    if (this.dialects.size === 0) throw new RangeError('dialects must name at least one dialect');
    this.modelList = options.models ?? DEFAULT_MODELS;
    this.families = this.modelList.map((m) => m.replace(/-\d{4}-\d{2}-\d{2}$/, ''));
    this.random = prng(options.seed ?? Math.floor(Math.random() * 2 ** 32));
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: 16 << 20,
      handleProtocols: (protocols) => (protocols.has('realtime') ? 'realtime' : false),
    });
    this.wss.on('headers', (headers) => headers.push(`x-request-id: ${randomId('req', 24)}`));
    this.host = {
      stats: this.stats,
      logger: this.opts.logger,
      audioChunkMs: this.opts.audioChunkMs,
      deltaIntervalMs: this.opts.deltaIntervalMs,
      faults: () => this.faultState,
      random: () => this.random(),
      now: () => this.opts.now(),
      recordClientEvent: (connectionId, type, raw) => this.recordClientEvent(connectionId, type, raw),
      recordServerEvent: (connectionId, type, raw) => {
        if (this.sentServerEvents) this.sentServerEvents.push({ connectionId, type, raw });
      },
      recordUsage: (id, usage) => this.recordUsage(id, usage),
      rateLimitsAfter: (tokens) => this.rateLimitsAfter(tokens),
      sessionClosed: (session, code, reason, fromClient) => this.sessionClosed(session, code, reason, fromClient),
    };
  }

  /**
   * Server frames exactly as sent, once `recordServerEvents()` was called (off by default: audio
   * deltas would hold megabytes). Tests compare them with what a client behind the relay got.
   */
  sentServerEvents: ReceivedClientEvent[] | null = null;

  recordServerEvents(): void {
    this.sentServerEvents ??= [];
  }

  get baseUrl(): string {
    return `http://${this.opts.host}:${this.port}/v1`;
  }

  async start(): Promise<{ port: number; url: string }> {
    if (this.server) throw new Error('simulator already started');
    const server = createServer((req, res) => this.onRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : this.opts.port;
    this.server = server;
    this.opts.logger.info('simulator: listening', this.baseUrl);
    return { port: this.port, url: this.baseUrl };
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    for (const t of this.stallTimers) clearTimeout(t);
    this.stallTimers.clear();
    for (const s of this.stalledSockets) s.destroy();
    this.stalledSockets.clear();
    const entries = [...this.sessions.values()];
    for (const e of entries) e.session.close(1001, 'server shutting down');
    for (const c of this.liveCalls.values()) c.hangup();
    // Give clients a moment to answer the close frame, then stop waiting for slow ones.
    const deadline = Date.now() + 1000;
    while (entries.some((e) => !e.session.isClosed) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const e of entries) if (!e.session.isClosed) e.session.terminate();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  setFaults(f: Partial<SimulatorFaults>): void {
    this.faultState = { ...this.faultState, ...f };
  }

  clearFaults(): void {
    this.faultState = { ...NO_FAULTS };
  }

  /** A live WebRTC call by its id (tests: its stats, dropping its sidebands). */
  call(callId: string): SimulatedCall | undefined {
    return this.liveCalls.get(callId);
  }

  calls(): SimulatedCall[] {
    return [...this.liveCalls.values()];
  }

  connections(): SimulatedConnectionInfo[] {
    return [...this.sessions.values()].filter((e) => !e.session.isClosed).map((e) => ({ ...e.info, headers: { ...e.info.headers } }));
  }

  // ---------------------------------------------------------------------------------------------
  // Models and credentials

  isKnownModel(model: string): boolean {
    if (this.modelList.includes(model)) return true;
    return this.families.some((f) => model === f || model.startsWith(`${f}-`));
  }

  private authenticate(credential: string | undefined): AuthResult {
    const key = this.opts.apiKey;
    if (credential !== undefined) {
      const minted = this.minted.get(credential);
      if (minted) {
        if (minted.expiresAtMs > this.opts.now()) return { ok: true, minted };
        this.minted.delete(credential);
        return { ok: false, message: 'The ephemeral key provided has expired.' };
      }
    }
    if (key === undefined) return { ok: true };
    if (credential === undefined || credential === '') {
      return {
        ok: false,
        message:
          "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
      };
    }
    if (credential === key) return { ok: true };
    return {
      ok: false,
      message: `Incorrect API key provided: ${maskKey(credential)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
    };
  }

  private sweepMinted(): void {
    const now = this.opts.now();
    for (const [k, v] of this.minted) if (v.expiresAtMs <= now) this.minted.delete(k);
  }

  // ---------------------------------------------------------------------------------------------
  // WebSocket handshake

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const faults = { ...this.faultState };
    const stall = faults.handshakeStallMs;
    if (stall !== null && stall > 0) {
      this.stalledSockets.add(socket);
      socket.once('close', () => this.stalledSockets.delete(socket));
      if (Number.isFinite(stall)) {
        const t = setTimeout(() => {
          this.stallTimers.delete(t);
          this.stalledSockets.delete(socket);
          if (!socket.destroyed) this.answerUpgrade(req, socket, head, faults);
        }, stall);
        this.stallTimers.add(t);
      }
      return;
    }
    this.answerUpgrade(req, socket, head, faults);
  }

  private answerUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, faults: SimulatorFaults): void {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const route = matchRoute(url);
    if (!route) {
      return rejectUpgrade(socket, apiError(404, `Invalid URL (GET ${url.pathname})`, 'invalid_request_error', null));
    }
    if (faults.handshakeStatus !== null) return rejectUpgrade(socket, faultAnswer(faults.handshakeStatus));
    const protocols = (header(req, 'sec-websocket-protocol') ?? '').split(',').map((p) => p.trim()).filter(Boolean);
    const auth = this.authenticate(credentialOf(req, protocols));
    if (!auth.ok) return rejectUpgrade(socket, apiError(401, auth.message, 'invalid_request_error', 'invalid_api_key'));
    if (route.callId !== undefined) return this.answerSideband(req, socket, head, route.callId, auth.minted);
    const model = auth.minted?.model ?? route.model ?? (route.callId ? GA_DEFAULT_MODEL : route.transcription ? TRANSCRIBE_MODEL : undefined);
    if (model === undefined) {
      return rejectUpgrade(socket, apiError(400, "Missing required parameter: 'model'.", 'invalid_request_error', 'missing_required_parameter', 'model'));
    }
    const bound = auth.minted !== undefined || route.callId !== undefined || route.transcription;
    if (!bound && !this.isKnownModel(model)) {
      return rejectUpgrade(
        socket,
        apiError(404, `The model '${model}' does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found'),
      );
    }
    const betaHeader = (header(req, 'openai-beta') ?? '').includes('realtime=v1');
    const asked: Dialect = route.forceBeta || betaHeader || protocols.includes('openai-beta.realtime-v1') ? 'beta' : 'ga';
    if (!this.dialects.has(asked) && asked === 'beta') {
      // OpenAI upgrades, then refuses in the protocol and closes (observed since May 2026).
      this.wss.handleUpgrade(req, socket, head, (ws) => refuseBeta(ws));
      return;
    }
    const dialect: Dialect = this.dialects.has(asked) ? asked : 'beta';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req, url, model, dialect, auth.minted));
  }

  /** `GET /v1/realtime?call_id=`: joins a live call's event stream. Providers refuse ephemeral keys here. */
  private answerSideband(req: IncomingMessage, socket: Duplex, head: Buffer, callId: string, minted: MintedKey | undefined): void {
    if (this.faultState.sidebandStatus !== null) return rejectUpgrade(socket, faultAnswer(this.faultState.sidebandStatus));
    if (minted) return rejectUpgrade(socket, apiError(401, 'Ephemeral keys cannot attach to a call; use a standard API key.', 'invalid_request_error', 'invalid_api_key'));
    const call = this.liveCalls.get(callId);
    if (!call) return rejectUpgrade(socket, apiError(404, `Call '${callId}' not found.`, 'invalid_request_error', 'call_not_found', 'call_id'));
    this.wss.handleUpgrade(req, socket, head, (ws) => call.attachSideband(ws));
  }

  private async createCall(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const faults = this.faultState;
    if (faults.handshakeStatus !== null) return sendJson(res, faultAnswer(faults.handshakeStatus));
    const auth = this.authenticate(credentialOf(req, []));
    if (!auth.ok) {
      req.resume();
      return sendJson(res, apiError(401, auth.message, 'invalid_request_error', 'invalid_api_key'));
    }
    const offer = await readCallOffer(header(req, 'content-type') ?? '', await readBodyBuffer(req));
    if ('status' in offer) return sendJson(res, offer);
    const requested = url.searchParams.get('model') ?? (typeof offer.session?.model === 'string' ? offer.session.model : undefined);
    const model = auth.minted?.model ?? requested ?? GA_DEFAULT_MODEL;
    if (!this.isKnownModel(model)) {
      return sendJson(res, apiError(404, `The model '${model}' does not exist or you do not have access to it.`, 'invalid_request_error', 'model_not_found'));
    }
    const initialConfig = offer.session ?? auth.minted?.config;
    const call = new SimulatedCall();
    let answer: string;
    try {
      answer = await call.answer(offer.sdp);
    } catch (e) {
      call.hangup();
      return sendJson(res, apiError(400, `Invalid SDP offer: ${e instanceof Error ? e.message : String(e)}`, 'invalid_request_error', 'invalid_offer', 'sdp'));
    }
    const id = `conn_${++this.connectionCounter}`;
    this.stats.connectionsOpened++;
    this.stats.callsCreated++;
    const session = new SimulatedSession(call, { connectionId: id, dialect: 'ga', model, autoRespond: true, ...(initialConfig ? { initialConfig } : {}) }, this.host);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    this.sessions.set(id, { session, info: { id, sessionId: session.sessionId, model, dialect: 'ga', path: url.pathname + url.search, headers } });
    this.liveCalls.set(call.callId, call);
    call.once('close', () => this.liveCalls.delete(call.callId));
    res.writeHead(201, { 'content-type': 'application/sdp', location: `/v1/realtime/calls/${call.callId}`, 'x-request-id': randomId('req', 24) });
    res.end(answer);
  }

  private hangupCall(req: IncomingMessage, res: ServerResponse, callId: string): void {
    req.resume();
    const cred = credentialOf(req, []);
    const auth = this.authenticate(cred);
    if (!auth.ok || auth.minted) return sendJson(res, apiError(401, auth.ok ? 'Use a standard API key to hang up a call.' : auth.message, 'invalid_request_error', 'invalid_api_key'));
    const call = this.liveCalls.get(callId);
    if (!call) return sendJson(res, apiError(404, `Call '${callId}' not found.`, 'invalid_request_error', 'call_not_found'));
    this.stats.callHangups++;
    call.hangup();
    sendJson(res, { status: 200, body: {} });
  }

  private onConnection(ws: WebSocket, req: IncomingMessage, url: URL, model: string, dialect: Dialect, minted: MintedKey | undefined): void {
    const id = `conn_${++this.connectionCounter}`;
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    }
    const clientRequestId = headers['x-client-request-id'];
    this.stats.connectionsOpened++;
    const session = new SimulatedSession(
      ws,
      {
        connectionId: id,
        dialect,
        model,
        ...(clientRequestId !== undefined ? { clientRequestId } : {}),
        ...(minted ? { initialConfig: minted.config } : {}),
      },
      this.host,
    );
    const info: SimulatedConnectionInfo = {
      id,
      sessionId: session.sessionId,
      model,
      dialect,
      path: url.pathname + url.search,
      headers,
      ...(clientRequestId !== undefined ? { clientRequestId } : {}),
    };
    this.sessions.set(id, { session, info });
    this.opts.logger.info('simulator: session opened', id, model, dialect);
  }

  private sessionClosed(session: SimulatedSession, code: number, reason: string, fromClient: boolean): void {
    this.sessions.delete(session.connectionId);
    this.stats.connectionsClosed++;
    if (fromClient) this.stats.lastCloseFromClient.set(session.connectionId, { code, reason });
    this.opts.logger.info('simulator: session closed', session.connectionId, code, reason);
  }

  private recordClientEvent(connectionId: string, type: string, raw: string): void {
    const list = this.stats.receivedClientEvents;
    list.push({ connectionId, type, raw });
    // Trim in batches so recording stays O(1) amortized.
    if (list.length > MAX_RECEIVED_EVENTS * 1.1) list.splice(0, list.length - MAX_RECEIVED_EVENTS);
  }

  private recordUsage(clientRequestId: string | undefined, usage: RealtimeUsage): void {
    addUsage(this.stats.usageTotals, usage);
    if (clientRequestId === undefined) return;
    let t = this.stats.usageByClientRequestId.get(clientRequestId);
    if (!t) {
      t = emptyTotals();
      this.stats.usageByClientRequestId.set(clientRequestId, t);
    }
    addUsage(t, usage);
  }

  private rateLimitsAfter(tokens: number): JsonObject[] {
    this.used.requests++;
    this.used.tokens += tokens;
    const entry = (name: 'requests' | 'tokens'): JsonObject => {
      const limit = RATE_LIMITS[name];
      const used = Math.min(limit, this.used[name]);
      // Rolling one-minute windows: the more is used, the longer until it is all back.
      return { name, limit, remaining: limit - used, reset_seconds: Math.round((used / limit) * 60 * 1000) / 1000 };
    };
    return [entry('requests'), entry('tokens')];
  }

  // ---------------------------------------------------------------------------------------------
  // HTTP

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://simulator.invalid');
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/healthz' && req.method === 'GET') return sendJson(res, { status: 200, body: { status: 'ok' } });
    const refusal = this.dialectRefusal(path);
    if (refusal) {
      req.resume();
      return sendJson(res, refusal);
    }
    const hangupId = hangupCallId(path);
    if ((CALLS_PATHS.has(path) || hangupId !== null) && req.method === 'POST') {
      if (hangupId !== null) return this.hangupCall(req, res, hangupId);
      this.createCall(req, res, url).catch((e: unknown) => {
        const tooLarge = e instanceof BodyTooLarge;
        if (!res.headersSent) sendJson(res, apiError(tooLarge ? 413 : 500, tooLarge ? 'Request body too large.' : 'The server had an error while processing your request.', tooLarge ? 'invalid_request_error' : 'server_error', null));
      });
      return;
    }
    const mint = MINT_ROUTES[path];
    if (!mint) return sendJson(res, apiError(404, `Invalid URL (${req.method ?? 'GET'} ${url.pathname})`, 'invalid_request_error', null));
    if (req.method !== 'POST') {
      return sendJson(res, apiError(405, `Method ${req.method ?? ''} not allowed for ${url.pathname}; use POST.`, 'invalid_request_error', null));
    }
    // Minting needs the real key: an ephemeral key cannot mint more keys.
    const key = this.opts.apiKey;
    if (key !== undefined) {
      const cred = credentialOf(req, []);
      if (cred !== key) {
        const auth = cred === undefined ? this.authenticate(undefined) : ({ ok: false, message: `Incorrect API key provided: ${maskKey(cred)}. You can find your API key at https://platform.openai.com/account/api-keys.` } as const);
        const message = auth.ok ? 'Invalid authentication.' : auth.message;
        req.resume();
        return sendJson(res, apiError(401, message, 'invalid_request_error', 'invalid_api_key'));
      }
    }
    readBody(req)
      .then((text) => {
        let body: unknown = {};
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch {
            return sendJson(
              res,
              apiError(400, 'We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.', 'invalid_request_error', null),
            );
          }
        }
        if (!isObject(body)) return sendJson(res, apiError(400, 'Invalid body: expected a JSON object.', 'invalid_request_error', 'invalid_type'));
        this.sweepMinted();
        sendJson(res, mint(body, this.mintContext()));
      })
      .catch((e: unknown) => {
        const tooLarge = e instanceof BodyTooLarge;
        sendJson(res, apiError(tooLarge ? 413 : 400, tooLarge ? 'Request body too large.' : 'Could not read the request body.', 'invalid_request_error', null));
      });
  }

  /** Mint endpoints of a dialect this simulator does not serve answer as the real services do. */
  private dialectRefusal(path: string): HttpAnswer | null {
    const beta = path === '/v1/realtime/sessions' || path === '/v1/realtime/transcription_sessions';
    if (beta && !this.dialects.has('beta')) return apiError(400, BETA_DISABLED_MESSAGE, 'invalid_request_error', 'beta_api_shape_disabled');
    if (!beta && MINT_ROUTES[path] && !this.dialects.has('ga')) return apiError(404, `Invalid URL (POST ${path})`, 'invalid_request_error', null);
    return null;
  }

  private mintContext(): MintContext {
    return {
      now: () => this.opts.now(),
      isKnownModel: (m) => this.isKnownModel(m),
      register: (k) => {
        this.minted.set(k.value, k);
        this.stats.mintedKeys++;
      },
    };
  }
}

const MINT_ROUTES: Record<string, (body: JsonObject, ctx: MintContext) => HttpAnswer> = {
  '/v1/realtime/sessions': mintBetaSession,
  '/v1/realtime/transcription_sessions': mintTranscriptionSession,
  '/v1/realtime/client_secrets': mintClientSecret,
  '/openai/v1/realtime/client_secrets': mintClientSecret,
};

/** OpenAI's own words for a beta request since the beta interface was removed. */
export const BETA_DISABLED_MESSAGE = 'The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.';

function refuseBeta(ws: WebSocket): void {
  ws.send(JSON.stringify({
    type: 'error',
    event_id: randomId('event', 20),
    error: { type: 'invalid_request_error', code: 'beta_api_shape_disabled', message: BETA_DISABLED_MESSAGE, param: null, event_id: null },
  }));
  ws.close(4000, 'invalid_request_error.beta_api_shape_disabled');
}

function matchRoute(url: URL): Route | null {
  const q = url.searchParams;
  const path = url.pathname.replace(/\/+$/, '');
  const opt = (name: string): string | undefined => q.get(name) ?? undefined;
  const transcription = q.get('intent') === 'transcription';
  if (path === '/v1/realtime' || path === '/openai/v1/realtime') {
    const model = opt('model');
    const callId = opt('call_id');
    return { ...(model ? { model } : {}), ...(callId ? { callId } : {}), transcription, forceBeta: false };
  }
  if (path === '/openai/realtime') {
    const model = opt('deployment') ?? opt('model');
    return { ...(model ? { model } : {}), transcription, forceBeta: true };
  }
  return null;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

function credentialOf(req: IncomingMessage, protocols: string[]): string | undefined {
  const authz = header(req, 'authorization');
  const bearer = authz?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  if (bearer) return bearer;
  const apiKey = header(req, 'api-key');
  if (apiKey) return apiKey.trim();
  const sub = protocols.find((p) => p.startsWith('openai-insecure-api-key.'));
  return sub ? sub.slice('openai-insecure-api-key.'.length) : undefined;
}

function maskKey(k: string): string {
  if (k.length <= 8) return '*'.repeat(k.length);
  return `${k.slice(0, 3)}${'*'.repeat(Math.min(20, k.length - 7))}${k.slice(-4)}`;
}

/** Bodies upstream sends for the handshake statuses tests inject. */
function faultAnswer(status: number): HttpAnswer {
  switch (status) {
    case 401:
      return apiError(401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key');
    case 403:
      return apiError(403, 'You are not allowed to access this resource.', 'invalid_request_error', 'permission_denied');
    case 404:
      return apiError(404, 'The model does not exist or you do not have access to it.', 'invalid_request_error', 'model_not_found');
    case 429:
      return apiError(429, 'Rate limit reached for requests. Please try again shortly.', 'requests', 'rate_limit_exceeded');
    default:
      if (status >= 500) return apiError(status, 'The server had an error while processing your request. Sorry about that!', 'server_error', 'server_error');
      return apiError(status, STATUS_CODES[status] ?? 'Error', 'invalid_request_error', null);
  }
}

function rejectUpgrade(socket: Duplex, answer: HttpAnswer): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(answer.body);
  const extra = answer.status === 429 ? 'Retry-After: 1\r\n' : '';
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${answer.status} ${STATUS_CODES[answer.status] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${randomId('req', 24)}\r\n` +
      extra +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function sendJson(res: ServerResponse, answer: HttpAnswer): void {
  const body = JSON.stringify(answer.body);
  res.writeHead(answer.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': randomId('req', 24),
  });
  res.end(body);
}

class BodyTooLarge extends Error {}

function readBody(req: IncomingMessage): Promise<string> {
  return readBodyBuffer(req).then((b) => b.toString('utf8'));
}

function readBodyBuffer(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge());
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
