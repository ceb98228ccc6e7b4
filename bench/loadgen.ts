/**
 * The load process, pinned to the other core: it is both ends of every path — the clients and
 * the upstream (a tiny echo/stream server) — so one clock times each frame from `send` at one
 * end to `message` at the other, and the relay's process does nothing but relay.
 */
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { FramePrefixReader, type FrameHead } from './lib/frame-prefix-reader';
import { makeWireFrame, readStamp, restampWireFrame, STAMP_PREFIX_BYTES, type FrameKind, type FrameStamp } from './lib/frames';
import { sampleProcess, type DirectionResult, type LoadApi } from './lib/protocol';
import { serve } from './lib/rpc';
import { Samples } from './lib/stats';

const OPEN = 1;
const TEXT_FRAME = 0x1;
const CLOSE_FRAME = 0x8;
const nowUs = (): number => performance.now() * 1000;

const socketOf = (ws: WebSocket): Socket => (ws as unknown as { _socket: Socket })._socket;

/**
 * Sends a bench frame as ready-made wire bytes (see makeWireFrame). ws keeps its socket
 * private; writing whole frames to it is safe because ws, too, writes each frame (here only
 * the closing handshake) in one go and queues nothing without compression.
 */
function sendWire(ws: WebSocket, kind: FrameKind, stamp: FrameStamp): void {
  const socket = socketOf(ws);
  const cache = wireCache.get(socket);
  // Nothing buffered: the socket's previous frame is with the kernel, its buffer free to reuse.
  if (cache && socket.writableLength === 0) {
    socket.write(restampWireFrame(cache, kind, stamp));
    return;
  }
  const fresh = makeWireFrame(kind, stamp);
  wireCache.set(socket, fresh);
  socket.write(fresh);
}
/** Each socket sends one kind of frame: appends from a client, deltas from the upstream. */
const wireCache = new WeakMap<Socket, Buffer>();

/**
 * Reads this socket's frames with FramePrefixReader instead of ws's receiver (ws still writes,
 * and still sees the socket end). A close frame ends the connection at once: the far end's
 * closing handshake is not what is measured, and waiting it out would stall the next scenario.
 */
function readRaw(ws: WebSocket, onText: (head: Buffer, length: number) => void): void {
  const socket = socketOf(ws);
  socket.removeAllListeners('data');
  const reader = new FramePrefixReader(STAMP_PREFIX_BYTES, (f: FrameHead) => {
    if (f.opcode === TEXT_FRAME && f.fin) onText(f.head, f.length);
    else if (f.opcode === CLOSE_FRAME) ws.terminate();
  });
  socket.on('data', (chunk: Buffer) => reader.push(chunk));
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Mode = 'idle' | 'echo' | 'stream';
let mode: Mode = 'idle';

interface Session {
  idx: number;
  /** Which path the session goes through: only one group streams at a time. */
  group: string;
  client: WebSocket;
  upstream: WebSocket | null;
  c2uSeq: number;
  u2cSeq: number;
  lastC2uSeen: number;
  lastU2cSeen: number;
  closed: boolean;
}

const sessions = new Map<number, Session>();
let nextIdx = 0;
let streamingGroup: string | null = null;
/** Sessions whose client is open, waiting for their hello to reach the upstream. */
const helloWaiters = new Map<number, () => void>();

// ---- per-direction records of a streaming run --------------------------------------------

class DirectionLog {
  sent = 0;
  received = 0;
  reordered = 0;
  private readonly sentDue = new Samples(1 << 16);
  private readonly sendLag = new Samples(1 << 16);
  private readonly recvDue = new Samples(1 << 16);
  private readonly recvLatency = new Samples(1 << 16);
  private readonly recvLateness = new Samples(1 << 16);
  private readonly recvBytes = new Samples(1 << 16);

  onSent(dueUs: number, sentUs: number): void {
    this.sent++;
    this.sentDue.add(dueUs);
    this.sendLag.add(sentUs - dueUs);
  }

  onReceived(dueUs: number, sentUs: number, atUs: number, bytes: number): void {
    this.received++;
    this.recvDue.add(dueUs);
    this.recvLatency.add(atUs - sentUs);
    this.recvLateness.add(atUs - dueUs);
    this.recvBytes.add(bytes);
  }

  /**
   * Rates count frames that arrived inside [fromUs, toUs); delays and latencies, the frames due
   * inside it (whenever they arrived): under overload the two differ, and both matter.
   */
  result(fromUs: number, toUs: number, delayThresholdUs: number): DirectionResult {
    const inWindow = (t: number): boolean => t >= fromUs && t < toUs;
    let sentInWindow = 0;
    const sendLag = new Samples();
    const sd = this.sentDue.values();
    const sl = this.sendLag.values();
    for (let i = 0; i < sd.length; i++) {
      if (!inWindow(sd[i])) continue;
      sentInWindow++;
      sendLag.add(sl[i]);
    }
    let receivedInWindow = 0;
    let deliveredInWindow = 0;
    let delayed = 0;
    let bytes = 0;
    const latency = new Samples();
    const lateness = new Samples();
    const rd = this.recvDue.values();
    const rl = this.recvLatency.values();
    const rlate = this.recvLateness.values();
    const rb = this.recvBytes.values();
    for (let i = 0; i < rd.length; i++) {
      if (inWindow(rd[i] + rlate[i])) {
        deliveredInWindow++;
        bytes += rb[i];
      }
      if (!inWindow(rd[i])) continue;
      receivedInWindow++;
      latency.add(rl[i]);
      lateness.add(rlate[i]);
      if (rlate[i] > delayThresholdUs) delayed++;
    }
    return {
      sentInWindow,
      receivedInWindow,
      deliveredInWindow,
      dropped: Math.max(0, this.sent - this.received),
      reordered: this.reordered,
      delayed,
      bytesInWindow: bytes,
      latencyUs: latency.values().slice(),
      latenessUs: lateness.values().slice(),
      sendLagUs: sendLag.values().slice(),
    };
  }
}

let c2uLog = new DirectionLog();
let u2cLog = new DirectionLog();
let foreignFrames = 0;
const foreignSample: string[] = [];
let closedEarly = 0;

function noteForeign(data: Buffer): void {
  foreignFrames++;
  if (foreignSample.length < 5) foreignSample.push(data.toString('utf8', 0, Math.min(300, data.length)));
}

// ---- echo mode (latency) ------------------------------------------------------------------

let echoC2u = NaN;
let echoWaiter: ((u2cUs: number) => void) | null = null;

// ---- the upstream ---------------------------------------------------------------------------

const upstreamServer = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, skipUTF8Validation: true, maxPayload: 64 * 1024 * 1024 });

/** Upstream sockets the relay opened in the beta dialect (`--translated`): they stream beta-named deltas. */
const betaUpstreams = new WeakSet<WebSocket>();
const deltaKind = (ws: WebSocket): FrameKind => (betaUpstreams.has(ws) ? 'delta-beta' : 'delta');

upstreamServer.on('connection', (ws, req) => {
  if (/realtime=v1/.test(String(req.headers['openai-beta'] ?? ''))) betaUpstreams.add(ws);
  let session: Session | undefined;
  readRaw(ws, (data: Buffer, length: number) => {
    const at = nowUs();
    const stamp = readStamp('append', data, length);
    if (!stamp) {
      noteForeign(data);
      return;
    }
    if (!session) {
      // The first frame names the session: the relay dials the upstream with its own ids.
      session = sessions.get(stamp.session);
      if (!session) return;
      session.upstream = ws;
    }
    if (stamp.seq === 0) {
      helloWaiters.get(stamp.session)?.();
      return;
    }
    if (mode === 'echo') {
      echoC2u = at - stamp.sentUs;
      sendWire(ws, deltaKind(ws), { session: stamp.session, seq: stamp.seq, scheduledUs: at, sentUs: nowUs() });
      return;
    }
    if (stamp.seq !== session.lastC2uSeen + 1) c2uLog.reordered++;
    session.lastC2uSeen = stamp.seq;
    c2uLog.onReceived(stamp.scheduledUs, stamp.sentUs, at, length);
  });
  ws.on('error', () => undefined);
});

const upstreamReady = new Promise<number>((resolve) => {
  upstreamServer.once('listening', () => {
    const a = upstreamServer.address();
    resolve(typeof a === 'object' && a ? a.port : 0);
  });
});

// ---- clients ------------------------------------------------------------------------------

function onClientMessage(s: Session, data: Buffer, length = data.length): void {
  const at = nowUs();
  // A beta client behind a translating relay (`--translated`) gets the beta-named delta.
  const stamp = readStamp('delta', data, length) ?? readStamp('delta-beta', data, length);
  if (!stamp) {
    noteForeign(data);
    return;
  }
  if (mode === 'echo') {
    echoWaiter?.(at - stamp.sentUs);
    return;
  }
  if (stamp.seq !== s.lastU2cSeen + 1) u2cLog.reordered++;
  s.lastU2cSeen = stamp.seq;
  u2cLog.onReceived(stamp.scheduledUs, stamp.sentUs, at, length);
}

function connectOne(idx: number, group: string, url: string, headers: Record<string, string>, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const client = new WebSocket(url, { headers, perMessageDeflate: false, skipUTF8Validation: true, handshakeTimeout: timeoutMs, maxPayload: 64 * 1024 * 1024 });
    const s: Session = { idx, group, client, upstream: null, c2uSeq: 0, u2cSeq: 0, lastC2uSeen: 0, lastU2cSeen: 0, closed: false };
    sessions.set(idx, s);
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`session ${idx}: not relayed end to end within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      helloWaiters.delete(idx);
      sessions.delete(idx);
      client.terminate();
      reject(err);
    };
    helloWaiters.set(idx, () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      helloWaiters.delete(idx);
      resolve();
    });
    client.on('open', () => {
      readRaw(client, (data, length) => onClientMessage(s, data, length));
      sendWire(client, 'append', { session: idx, seq: 0, scheduledUs: 0, sentUs: 0 });
    });
    // Frames that came in the same packet as the handshake's answer went through ws already.
    client.on('message', (data: Buffer) => onClientMessage(s, data));
    client.on('unexpected-response', (_req, res) => fail(new Error(`session ${idx}: handshake answered ${res.statusCode}`)));
    client.on('error', (err) => fail(err));
    client.on('close', (code) => {
      if (!s.closed && mode === 'stream' && s.group === streamingGroup) closedEarly++;
      s.closed = true;
      fail(new Error(`session ${idx}: closed ${code} before it was relayed`));
    });
  });
}

// ---- the stream scheduler -------------------------------------------------------------------

interface Due {
  offsetMs: number;
  session: Session;
  toUpstream: boolean;
}

let schedulerTimer: NodeJS.Timeout | null = null;

function startScheduler(periodMs: number, group: string): number {
  const list = [...sessions.values()].filter((s) => s.group === group);
  const n = list.length;
  const dues: Due[] = [];
  // Sessions are spread evenly over the period, as independent callers would be; the upstream
  // speaks half a period after the client, so the two directions do not bunch up.
  list.forEach((session, i) => {
    const phase = (i * periodMs) / n;
    dues.push({ offsetMs: phase, session, toUpstream: true });
    dues.push({ offsetMs: (phase + periodMs / 2) % periodMs, session, toUpstream: false });
  });
  dues.sort((a, b) => a.offsetMs - b.offsetMs);
  const t0 = performance.now() + 20;
  let cursor = 0;
  let period = 0;
  const tick = (): void => {
    const now = performance.now();
    for (;;) {
      const d = dues[cursor];
      const dueMs = t0 + period * periodMs + d.offsetMs;
      if (dueMs > now) break;
      send(d, dueMs * 1000);
      if (++cursor === dues.length) {
        cursor = 0;
        period++;
      }
    }
    schedulerTimer = setTimeout(tick, 1);
  };
  schedulerTimer = setTimeout(tick, 20);
  return t0 * 1000;
}

function send(d: Due, dueUs: number): void {
  const s = d.session;
  if (d.toUpstream) {
    if (s.client.readyState !== OPEN) return;
    const sentUs = nowUs();
    sendWire(s.client, 'append', { session: s.idx, seq: ++s.c2uSeq, scheduledUs: dueUs, sentUs });
    c2uLog.onSent(dueUs, sentUs);
  } else {
    if (!s.upstream || s.upstream.readyState !== OPEN) return;
    const sentUs = nowUs();
    sendWire(s.upstream, deltaKind(s.upstream), { session: s.idx, seq: ++s.u2cSeq, scheduledUs: dueUs, sentUs });
    u2cLog.onSent(dueUs, sentUs);
  }
}

// ---- commands -------------------------------------------------------------------------------

async function connectMany(group: string, url: string, headers: Record<string, string>, n: number, concurrency: number, timeoutMs: number) {
  const started = performance.now();
  let next = 0;
  let connected = 0;
  let failed = 0;
  let firstError: string | null = null;
  const worker = async (): Promise<void> => {
    while (next < n) {
      next++;
      try {
        await connectOne(nextIdx++, group, url, headers, timeoutMs);
        connected++;
      } catch (err) {
        failed++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return { connected, failed, ms: performance.now() - started, firstError };
}

function closeClient(s: Session): Promise<void> {
  return new Promise<void>((resolve) => {
    s.closed = true;
    if (s.client.readyState === WebSocket.CLOSED) return resolve();
    const t = setTimeout(() => {
      s.client.terminate();
      resolve();
    }, 5000);
    s.client.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    s.client.close(1000);
  });
}

/** Closes one group's sessions, or all; resolves once their upstream ends are gone too. */
async function disconnect(group?: string): Promise<number> {
  const list = [...sessions.values()].filter((s) => group === undefined || s.group === group);
  if (group === undefined) mode = 'idle';
  await Promise.all(list.map(closeClient));
  for (const s of list) sessions.delete(s.idx);
  if (sessions.size === 0) nextIdx = 0;
  // The next scenario starts only once the far ends are gone too.
  const ups = list.map((s) => s.upstream).filter((u): u is WebSocket => u !== null);
  const deadline = Date.now() + 10_000;
  while (ups.some((u) => u.readyState !== WebSocket.CLOSED) && Date.now() < deadline) await sleep(20);
  for (const u of ups) if (u.readyState !== WebSocket.CLOSED) u.terminate();
  if (group === undefined) {
    while (upstreamServer.clients.size > 0 && Date.now() < deadline) await sleep(20);
    for (const ws of upstreamServer.clients) ws.terminate();
  }
  return list.length;
}

const disconnectAll = (): Promise<number> => disconnect();

serve<LoadApi>({
  init: async () => {
    const port = await upstreamReady;
    return { upstreamBaseUrl: `http://127.0.0.1:${port}/v1`, upstreamWsUrl: `ws://127.0.0.1:${port}/v1/realtime?model=gpt-realtime` };
  },
  latency: async ({ paths, samples, warmup, gapMs }) => {
    const errors: string[] = [];
    await disconnectAll();
    // One session per path, all open at once: frames alternate between the paths, so whatever
    // the machine does meanwhile (another VM, a frequency change) touches every path alike.
    for (let k = 0; k < paths.length; k++) await connectOne(nextIdx++, 'latency', paths[k].url, paths[k].headers, 10_000);
    mode = 'echo';
    const out = paths.map(() => ({ c2u: new Float64Array(samples), u2c: new Float64Array(samples) }));
    let n = 0;
    for (let i = 1; i <= warmup + samples && errors.length < 10; i++) {
      for (let j = 0; j < paths.length; j++) {
        // The order rotates too, so no path is always the one right after another's frame.
        const k = (i + j) % paths.length;
        const s = sessions.get(k) as Session;
        const reply = new Promise<number>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`path ${k}: no echo for frame ${i} within 5 s`)), 5000);
          echoWaiter = (u) => {
            clearTimeout(t);
            resolve(u);
          };
        });
        sendWire(s.client, 'append', { session: k, seq: i, scheduledUs: 0, sentUs: nowUs() });
        try {
          const u = await reply;
          if (i > warmup) {
            out[k].c2u[n] = echoC2u;
            out[k].u2c[n] = u;
          }
        } catch (err) {
          errors.push(err instanceof Error ? err.message : String(err));
        }
        echoWaiter = null;
        await sleep(gapMs);
      }
      if (i > warmup) n++;
    }
    await disconnectAll();
    return { perPath: out.map((o) => ({ c2u: o.c2u.slice(0, n), u2c: o.u2c.slice(0, n) })), errors };
  },
  connect: async ({ group, url, headers, sessions: n, concurrency, timeoutMs }) => connectMany(group, url, headers, n, concurrency, timeoutMs),
  streamStart: async ({ periodMs, group }) => {
    c2uLog = new DirectionLog();
    u2cLog = new DirectionLog();
    foreignFrames = 0;
    foreignSample.length = 0;
    closedEarly = 0;
    mode = 'stream';
    streamingGroup = group;
    return { startedUs: startScheduler(periodMs, group) };
  },
  sample: async () => sampleProcess(),
  streamStop: async ({ windowStartUs, windowEndUs, graceMs, maxGraceMs, delayThresholdMs }) => {
    if (schedulerTimer) clearTimeout(schedulerTimer);
    schedulerTimer = null;
    // A frame still queued somewhere is late, not lost: wait until arrivals stop for graceMs.
    const started = performance.now();
    let last = -1;
    let lastChange = performance.now();
    while (performance.now() - lastChange < graceMs && performance.now() - started < maxGraceMs) {
      const now = c2uLog.received + u2cLog.received;
      if (now !== last) {
        last = now;
        lastChange = performance.now();
      }
      if (c2uLog.received >= c2uLog.sent && u2cLog.received >= u2cLog.sent) break;
      await sleep(100);
    }
    const thresholdUs = delayThresholdMs * 1000;
    const cutOff = performance.now() - lastChange < graceMs && (c2uLog.received < c2uLog.sent || u2cLog.received < u2cLog.sent);
    mode = 'idle';
    streamingGroup = null;
    return {
      windowMs: (windowEndUs - windowStartUs) / 1000,
      c2u: c2uLog.result(windowStartUs, windowEndUs, thresholdUs),
      u2c: u2cLog.result(windowStartUs, windowEndUs, thresholdUs),
      foreignFrames,
      foreignSample: [...foreignSample],
      closedEarly,
      cutOff,
      waitedMs: performance.now() - started,
    };
  },
  disconnect: async ({ group }) => ({ closed: await disconnect(group) }),
});
