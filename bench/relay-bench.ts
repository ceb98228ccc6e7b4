/**
 * The relay against a bare ws-to-ws pipe, side by side on this machine: added latency per
 * frame, real-time audio throughput at 1 / 100 / 1,000 sessions, CPU per session-second and
 * memory per session. `npm run bench` (a few minutes) or `npm run bench -- --quick` (< 1 min).
 *
 * Processes: this orchestrator; the process under test (relay or pipe), pinned to core 0; the
 * load process (clients and a local upstream), pinned to core 1. See bench/README.md.
 */
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { frameBytes } from './lib/frames';
import { diffPerSession, groupSnapshot, type HeapGroup } from './lib/heapsnapshot';
import { formatProfile, readProfile, summariseProfile, type ProfileSummary } from './lib/cpuprofile';
import type { DirectionResult, LoadApi, PathKind, ProcSample, StreamResult, TargetApi, TargetKind } from './lib/protocol';
import { Peer } from './lib/rpc';
import { concatSamples, percentiles, ratio, type Percentiles } from './lib/stats';

const REPO = path.resolve(__dirname, '..');
const RESULTS = path.join(REPO, 'bench', 'results');
const LOGS = path.join(RESULTS, 'logs');
const PROFILES = path.join(RESULTS, 'profiles');

// ---- options ----------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  sessions: number[];
  latencySamples: number;
  latencyRounds: number;
  latencyGapMs: number;
  warmupMs: number;
  windowMs: number;
  graceMs: number;
  periodMs: number;
  delayThresholdMs: number;
  directThroughput: boolean;
  profile: boolean;
  heap: boolean;
  connectConcurrency: number;
}

function parseOptions(argv: string[]): Options {
  const has = (f: string): boolean => argv.includes(f);
  const value = (f: string): string | undefined => argv.find((a) => a.startsWith(`${f}=`))?.slice(f.length + 1);
  const quick = has('--quick');
  const sessions = value('--sessions')?.split(',').map(Number).filter((n) => n > 0) ?? (quick ? [1, 1000] : [1, 100, 1000]);
  return {
    quick,
    sessions,
    latencySamples: Number(value('--latency-samples') ?? (quick ? 1500 : 12000)),
    latencyRounds: quick ? 3 : 6,
    latencyGapMs: 1,
    warmupMs: quick ? 1500 : 3000,
    windowMs: Number(value('--window-s') ?? (quick ? 4 : 15)) * 1000,
    graceMs: 2000,
    periodMs: 100,
    delayThresholdMs: 50,
    directThroughput: !quick,
    profile: has('--profile') || (!quick && !has('--no-profile')),
    heap: has('--heap') || (!quick && !has('--no-heap')),
    connectConcurrency: 50,
  };
}

// ---- processes ----------------------------------------------------------------------------------

interface Placement {
  pinned: boolean;
  relayCpu: number;
  loadCpu: number;
  note: string;
}

function placement(): Placement {
  const cores = os.cpus().length;
  try {
    execFileSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' });
  } catch {
    return { pinned: false, relayCpu: -1, loadCpu: -1, note: 'taskset unavailable: processes not pinned, the OS schedules them' };
  }
  if (cores < 2) return { pinned: false, relayCpu: -1, loadCpu: -1, note: 'one core: relay and load generator share it (figures are pessimistic)' };
  const loadCpu = cores - 1;
  try {
    // The orchestrator mostly sleeps, but it must never steal the relay's core.
    execFileSync('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)], { stdio: 'ignore' });
  } catch {
    /* not fatal: it is idle while measuring */
  }
  return {
    pinned: true,
    relayCpu: 0,
    loadCpu,
    note: `relay (or pipe) pinned to core 0, load generator + local upstream pinned to core ${loadCpu} (taskset); ${cores} cores in all`,
  };
}

function spawnNode<A extends TargetApi | LoadApi>(name: string, script: string, cpu: number, pin: boolean, nodeArgs: string[]): Peer<A> {
  mkdirSync(LOGS, { recursive: true });
  const log = openSync(path.join(LOGS, `${name}.log`), 'a');
  const nodeCmd = [process.execPath, ...nodeArgs, '--import', 'tsx', path.join(REPO, 'bench', script)];
  const [cmd, ...args] = pin ? ['taskset', '-c', String(cpu), ...nodeCmd] : nodeCmd;
  const child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', log, log, 'ipc'], serialization: 'advanced', env: { ...process.env, NODE_OPTIONS: '' } });
  closeSync(log);
  return new Peer<A>(name, child);
}

// ---- results ------------------------------------------------------------------------------------

interface LatencyPath {
  c2u: Percentiles;
  u2c: Percentiles;
}

interface LatencyReport {
  method: string;
  samplesPerPath: number;
  frameBytes: { append: number; delta: number };
  absolute: Record<PathKind, LatencyPath>;
  /** Path minus direct, per percentile. */
  added: Record<TargetKind, { c2u: Pick<Percentiles, 'p50' | 'p99' | 'p999'>; u2c: Pick<Percentiles, 'p50' | 'p99' | 'p999'> }>;
  /** Relay's added latency over the pipe's. */
  ratio: { c2u: { p50: number; p99: number; p999: number }; u2c: { p50: number; p99: number; p999: number } };
  errors: string[];
}

interface DirectionSummary {
  expectedFramesPerS: number;
  framesPerS: number;
  mbPerS: number;
  sentInWindow: number;
  receivedInWindow: number;
  dropped: number;
  delayed: number;
  reordered: number;
  latencyUs: Percentiles;
  latenessUs: Percentiles;
  sendLagUs: Percentiles;
}

interface ThroughputRow {
  sessions: number;
  path: PathKind;
  connected: number;
  connectFailed: number;
  connectMs: number;
  connectError: string | null;
  windowS: number;
  c2u: DirectionSummary;
  u2c: DirectionSummary;
  framesPerS: number;
  mbPerS: number;
  dropped: number;
  delayed: number;
  foreignFrames: number;
  foreignSample: string[];
  closedEarly: number;
  /** The process under test (absent for direct). */
  target?: {
    cpuCoreShare: number;
    cpuUsPerSessionSecond: number;
    baseRss: number;
    idleRssPerSession: number;
    idleHeapPerSession: number;
    idleExternalPerSession: number;
    activeRssPerSession: number;
    activeHeapPerSession: number;
    openSessionsSeen: number;
  };
  loadCpuCoreShare: number;
}

interface HeapBreakdown {
  kind: TargetKind;
  sessions: number;
  heapPerSession: number;
  top: HeapGroup[];
}

interface ProfileReport {
  kind: TargetKind;
  sessions: number;
  file: string;
  summary: ProfileSummary;
}

// ---- helpers ------------------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

function wsUrl(baseUrl: string): string {
  return `${baseUrl.replace(/^http/, 'ws')}/v1/realtime?model=gpt-realtime`;
}

async function createApiKey(baseUrl: string, adminToken: string): Promise<string> {
  const res = await fetch(`${baseUrl}/admin/keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ scopes: ['realtime'], user: 'bench-user', name: 'relay-bench' }),
  });
  const body = (await res.json()) as { key?: unknown };
  if (res.status !== 201 || typeof body.key !== 'string') throw new Error(`POST /admin/keys answered ${res.status}: ${JSON.stringify(body)}`);
  return body.key;
}

interface StartedTarget {
  kind: TargetKind;
  peer: Peer<TargetApi>;
  url: string;
  headers: Record<string, string>;
  dataDir: string;
}

let targetCounter = 0;

async function startTarget(kind: TargetKind, upstreamBaseUrl: string, place: Placement, extraNodeArgs: string[] = []): Promise<StartedTarget> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), `relay-bench-${kind}-`));
  const peer = spawnNode<TargetApi>(`${kind}-${++targetCounter}`, 'target.ts', place.relayCpu, place.pinned, ['--expose-gc', ...extraNodeArgs]);
  const adminToken = randomBytes(24).toString('base64url');
  const { baseUrl } = await peer.call('start', { kind, upstreamBaseUrl, dataDir, adminToken }, 60_000);
  const headers: Record<string, string> = {};
  // The relay is measured as deployed: every session authenticates with an admin-created API key.
  if (kind === 'relay') headers.authorization = `Bearer ${await createApiKey(baseUrl, adminToken)}`;
  return { kind, peer, url: wsUrl(baseUrl), headers, dataDir };
}

async function stopTarget(t: StartedTarget): Promise<void> {
  try {
    await t.peer.call('stop', {}, 60_000);
  } catch (err) {
    log(`stopping ${t.kind}: ${err instanceof Error ? err.message : String(err)}`);
  }
  await t.peer.waitExit(30_000);
  rmSync(t.dataDir, { recursive: true, force: true });
}

function cpuUs(a: ProcSample, b: ProcSample): number {
  return b.cpuUserUs + b.cpuSystemUs - (a.cpuUserUs + a.cpuSystemUs);
}

function summariseDirection(d: DirectionResult, sessions: number, windowS: number, periodMs: number): DirectionSummary {
  return {
    expectedFramesPerS: (sessions * 1000) / periodMs,
    framesPerS: d.receivedInWindow / windowS,
    mbPerS: d.bytesInWindow / windowS / 1e6,
    sentInWindow: d.sentInWindow,
    receivedInWindow: d.receivedInWindow,
    dropped: d.dropped,
    delayed: d.delayed,
    reordered: d.reordered,
    latencyUs: percentiles(d.latencyUs),
    latenessUs: percentiles(d.latenessUs),
    sendLagUs: percentiles(d.sendLagUs),
  };
}

// ---- phases -------------------------------------------------------------------------------------

async function latencyPhase(o: Options, load: Peer<LoadApi>, upstream: { base: string; ws: string }, place: Placement): Promise<LatencyReport> {
  log(`latency: ${o.latencySamples} ping-pong frames per path in ${o.latencyRounds} interleaved rounds`);
  const relay = await startTarget('relay', upstream.base, place);
  const pipe = await startTarget('pipe', upstream.base, place);
  const paths: Record<PathKind, { url: string; headers: Record<string, string> }> = {
    direct: { url: upstream.ws, headers: {} },
    pipe: { url: pipe.url, headers: pipe.headers },
    relay: { url: relay.url, headers: relay.headers },
  };
  const order: PathKind[] = ['direct', 'pipe', 'relay'];
  const got: Record<PathKind, { c2u: Float64Array[]; u2c: Float64Array[] }> = {
    direct: { c2u: [], u2c: [] },
    pipe: { c2u: [], u2c: [] },
    relay: { c2u: [], u2c: [] },
  };
  const errors: string[] = [];
  const perRound = Math.ceil(o.latencySamples / o.latencyRounds);
  for (let r = 0; r < o.latencyRounds; r++) {
    // Rotating the order spreads any drift (frequency, page cache, GC age) over all three paths.
    for (let k = 0; k < order.length; k++) {
      const p = order[(r + k) % order.length];
      const res = await load.call('latency', { ...paths[p], samples: perRound, warmup: 200, gapMs: o.latencyGapMs });
      got[p].c2u.push(res.c2u);
      got[p].u2c.push(res.u2c);
      errors.push(...res.errors.map((e) => `${p}: ${e}`));
    }
  }
  await stopTarget(relay);
  await stopTarget(pipe);

  const absolute = {} as Record<PathKind, LatencyPath>;
  for (const p of order) absolute[p] = { c2u: percentiles(concatSamples(got[p].c2u)), u2c: percentiles(concatSamples(got[p].u2c)) };
  const minus = (a: Percentiles, b: Percentiles): Pick<Percentiles, 'p50' | 'p99' | 'p999'> => ({ p50: a.p50 - b.p50, p99: a.p99 - b.p99, p999: a.p999 - b.p999 });
  const added = {
    pipe: { c2u: minus(absolute.pipe.c2u, absolute.direct.c2u), u2c: minus(absolute.pipe.u2c, absolute.direct.u2c) },
    relay: { c2u: minus(absolute.relay.c2u, absolute.direct.c2u), u2c: minus(absolute.relay.u2c, absolute.direct.u2c) },
  };
  const r3 = (a: Pick<Percentiles, 'p50' | 'p99' | 'p999'>, b: Pick<Percentiles, 'p50' | 'p99' | 'p999'>): { p50: number; p99: number; p999: number } => ({
    p50: ratio(a.p50, b.p50),
    p99: ratio(a.p99, b.p99),
    p999: ratio(a.p999, b.p999),
  });
  return {
    method:
      'one session, one frame in flight: the client sends an append, the upstream answers it at once with a delta; ' +
      `${o.latencyGapMs} ms pause between pairs; one-way times read on the load process's single clock; added = path − direct (client straight to the upstream)`,
    samplesPerPath: absolute.relay.c2u.count,
    frameBytes: { append: frameBytes('append'), delta: frameBytes('delta') },
    absolute,
    added,
    ratio: { c2u: r3(added.relay.c2u, added.pipe.c2u), u2c: r3(added.relay.u2c, added.pipe.u2c) },
    errors,
  };
}

interface StreamRun {
  stream: StreamResult;
  targetSamples?: { base: ProcSample; idle: ProcSample; w0: ProcSample; w1: ProcSample; openSessions: number };
  loadW0: ProcSample;
  loadW1: ProcSample;
  connect: { connected: number; failed: number; ms: number; firstError: string | null };
}

async function streamScenario(o: Options, load: Peer<LoadApi>, sessions: number, url: string, headers: Record<string, string>, target?: StartedTarget): Promise<StreamRun> {
  const base = target ? await target.peer.call('sample', { gc: true }) : undefined;
  const connect = await load.call('connect', { url, headers, sessions, concurrency: o.connectConcurrency, timeoutMs: 30_000 });
  if (connect.failed > 0) log(`  ${connect.failed} of ${sessions} sessions failed to connect: ${connect.firstError}`);
  await sleep(1000);
  const idle = target ? await target.peer.call('sample', { gc: true }) : undefined;
  const openSessions = target ? (await target.peer.call('openSessions', {})).sessions : 0;
  await load.call('streamStart', { periodMs: o.periodMs });
  await sleep(o.warmupMs);
  const [loadW0, w0] = await Promise.all([load.call('sample', {}), target?.peer.call('sample', { gc: false })]);
  await sleep(o.windowMs);
  const [loadW1, w1] = await Promise.all([load.call('sample', {}), target?.peer.call('sample', { gc: false })]);
  const stream = await load.call('streamStop', { windowStartUs: loadW0.nowUs, windowEndUs: loadW1.nowUs, graceMs: o.graceMs, delayThresholdMs: o.delayThresholdMs });
  await load.call('disconnect', {});
  return {
    stream,
    loadW0,
    loadW1,
    connect,
    targetSamples: target && base && idle && w0 && w1 ? { base, idle, w0, w1, openSessions } : undefined,
  };
}

function throughputRow(o: Options, sessions: number, p: PathKind, run: StreamRun): ThroughputRow {
  const s = run.stream;
  const windowS = s.windowMs / 1000;
  const c2u = summariseDirection(s.c2u, sessions, windowS, o.periodMs);
  const u2c = summariseDirection(s.u2c, sessions, windowS, o.periodMs);
  const t = run.targetSamples;
  const n = Math.max(1, run.connect.connected);
  const loadWallUs = run.loadW1.hrUs - run.loadW0.hrUs;
  return {
    sessions,
    path: p,
    connected: run.connect.connected,
    connectFailed: run.connect.failed,
    connectMs: run.connect.ms,
    connectError: run.connect.firstError,
    windowS,
    c2u,
    u2c,
    framesPerS: c2u.framesPerS + u2c.framesPerS,
    mbPerS: c2u.mbPerS + u2c.mbPerS,
    dropped: c2u.dropped + u2c.dropped,
    delayed: c2u.delayed + u2c.delayed,
    foreignFrames: s.foreignFrames,
    foreignSample: s.foreignSample,
    closedEarly: s.closedEarly,
    loadCpuCoreShare: cpuUs(run.loadW0, run.loadW1) / loadWallUs,
    target: t
      ? {
          cpuCoreShare: cpuUs(t.w0, t.w1) / (t.w1.hrUs - t.w0.hrUs),
          cpuUsPerSessionSecond: cpuUs(t.w0, t.w1) / (n * ((t.w1.hrUs - t.w0.hrUs) / 1e6)),
          baseRss: t.base.rss,
          idleRssPerSession: (t.idle.rss - t.base.rss) / n,
          idleHeapPerSession: (t.idle.heapUsed - t.base.heapUsed) / n,
          idleExternalPerSession: (t.idle.external - t.base.external) / n,
          activeRssPerSession: (t.w1.rss - t.base.rss) / n,
          activeHeapPerSession: (t.w1.heapUsed - t.base.heapUsed) / n,
          openSessionsSeen: t.openSessions,
        }
      : undefined,
  };
}

async function throughputPhase(o: Options, load: Peer<LoadApi>, upstream: { base: string; ws: string }, place: Placement): Promise<ThroughputRow[]> {
  const rows: ThroughputRow[] = [];
  for (const n of o.sessions) {
    const paths: PathKind[] = o.directThroughput ? ['direct', 'pipe', 'relay'] : ['pipe', 'relay'];
    for (const p of paths) {
      log(`throughput: ${n} sessions via ${p} (warm-up ${o.warmupMs / 1000} s, window ${o.windowMs / 1000} s)`);
      if (p === 'direct') {
        rows.push(throughputRow(o, n, p, await streamScenario(o, load, n, upstream.ws, {})));
        continue;
      }
      const t = await startTarget(p, upstream.base, place);
      try {
        rows.push(throughputRow(o, n, p, await streamScenario(o, load, n, t.url, t.headers, t)));
      } finally {
        await stopTarget(t);
      }
    }
  }
  return rows;
}

async function heapPhase(o: Options, load: Peer<LoadApi>, upstream: { base: string; ws: string }, place: Placement): Promise<HeapBreakdown[]> {
  const n = Math.max(...o.sessions);
  const out: HeapBreakdown[] = [];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'relay-bench-heap-'));
  try {
    for (const kind of ['pipe', 'relay'] as const) {
      log(`memory breakdown: heap snapshots of ${kind} with 0 and ${n} idle sessions`);
      const t = await startTarget(kind, upstream.base, place);
      try {
        // One session first, so code that is loaded lazily on the first connection is in both snapshots.
        await load.call('connect', { url: t.url, headers: t.headers, sessions: 1, concurrency: 1, timeoutMs: 30_000 });
        await load.call('disconnect', {});
        await sleep(500);
        const before = (await t.peer.call('heapSnapshot', { file: path.join(dir, `${kind}-0.heapsnapshot`) }, 300_000)).file;
        const c = await load.call('connect', { url: t.url, headers: t.headers, sessions: n, concurrency: o.connectConcurrency, timeoutMs: 30_000 });
        await sleep(1000);
        const after = (await t.peer.call('heapSnapshot', { file: path.join(dir, `${kind}-${n}.heapsnapshot`) }, 300_000)).file;
        await load.call('disconnect', {});
        const b = groupSnapshot(before);
        const a = groupSnapshot(after);
        let total = 0;
        for (const g of a.values()) total += g.bytes;
        for (const g of b.values()) total -= g.bytes;
        out.push({ kind, sessions: c.connected, heapPerSession: total / Math.max(1, c.connected), top: diffPerSession(b, a, Math.max(1, c.connected), 20) });
      } finally {
        await stopTarget(t);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

async function profilePhase(o: Options, load: Peer<LoadApi>, upstream: { base: string; ws: string }, place: Placement): Promise<ProfileReport[]> {
  const n = Math.max(...o.sessions);
  mkdirSync(PROFILES, { recursive: true });
  const out: ProfileReport[] = [];
  for (const kind of ['relay', 'pipe'] as const) {
    log(`profile: ${kind} under node --cpu-prof, ${n} streaming sessions`);
    const name = `${kind}-${n}.cpuprofile`;
    const file = path.join(PROFILES, name);
    rmSync(file, { force: true });
    const t = await startTarget(kind, upstream.base, place, ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}`]);
    let run: StreamRun;
    try {
      run = await streamScenario(o, load, n, t.url, t.headers, t);
    } finally {
      await stopTarget(t);
    }
    for (let i = 0; i < 50 && !existsSync(file); i++) await sleep(100);
    if (!existsSync(file) || !run.targetSamples) {
      log(`  no profile written at ${file}`);
      continue;
    }
    const { w0, w1 } = run.targetSamples;
    out.push({ kind, sessions: n, file: path.relative(REPO, file), summary: summariseProfile(readProfile(file), { fromUs: w0.hrUs, toUs: w1.hrUs, top: 20 }) });
  }
  return out;
}

// ---- report -------------------------------------------------------------------------------------

function table(head: string[], rows: (string | number)[][], align: ('l' | 'r')[] = []): string {
  const sep = head.map((_, i) => (align[i] === 'l' ? '---' : '---:'));
  return [head, sep, ...rows.map((r) => r.map(String))].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const us = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '—');
const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '—');
const kib = (v: number): string => (Number.isFinite(v) ? `${(v / 1024).toFixed(1)}` : '—');
const pct = (v: number): string => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '—');

interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

function verdicts(lat: LatencyReport | null, rows: ThroughputRow[], o: Options): Verdict[] {
  const out: Verdict[] = [];
  if (lat) {
    const worstP50 = Math.max(lat.ratio.c2u.p50, lat.ratio.u2c.p50);
    const worstP99 = Math.max(lat.ratio.c2u.p99, lat.ratio.u2c.p99);
    out.push({ target: 'added latency p50 ≤ 1.10× bare pipe', measured: `c→u ${x(lat.ratio.c2u.p50)}, u→c ${x(lat.ratio.u2c.p50)}`, met: Number.isFinite(worstP50) ? worstP50 <= 1.1 : null });
    out.push({ target: 'added latency p99 ≤ 1.25× bare pipe', measured: `c→u ${x(lat.ratio.c2u.p99)}, u→c ${x(lat.ratio.u2c.p99)}`, met: Number.isFinite(worstP99) ? worstP99 <= 1.25 : null });
  }
  const max = Math.max(...o.sessions);
  const big = rows.find((r) => r.path === 'relay' && r.sessions === max);
  if (big) {
    out.push({
      target: `${max} concurrent audio sessions on one core, no dropped frames`,
      measured: `${big.connected}/${max} connected, dropped ${big.dropped}, delayed >${o.delayThresholdMs} ms ${big.delayed}, relay CPU ${pct(big.target?.cpuCoreShare ?? NaN)} of a core`,
      met: big.connected === max && big.dropped === 0 && big.closedEarly === 0,
    });
    const idle = big.target?.idleRssPerSession ?? NaN;
    out.push({ target: 'RSS per idle session < 100 KiB', measured: `${kib(idle)} KiB (at ${max} sessions)`, met: Number.isFinite(idle) ? idle < 100 * 1024 : null });
  }
  return out;
}

function renderMarkdown(r: BenchResults): string {
  const o = r.options;
  const parts: string[] = [];
  parts.push(`# Relay benchmark — ${r.finishedAt}`);
  parts.push('');
  parts.push(`Machine: ${r.machine.cpuModel}, ${r.machine.cores} cores, ${(r.machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${r.machine.node}, ${r.machine.os}; ws ${r.machine.ws}, fastify ${r.machine.fastify}.`);
  parts.push(`Placement: ${r.placement}.`);
  parts.push(`Run: ${o.quick ? 'quick' : 'full'}; frames: append ${frameBytes('append')} B, delta ${frameBytes('delta')} B (100 ms of 24 kHz pcm16 = 4800 B raw → 6400 B base64, plus envelope).`);
  parts.push('');
  if (r.latency) {
    const l = r.latency;
    parts.push('## Added latency per frame (µs)');
    parts.push('');
    parts.push(`${l.method}. ${l.samplesPerPath} samples per path and direction.`);
    parts.push('');
    const row = (label: string, dir: 'c2u' | 'u2c', p: PathKind): (string | number)[] => {
      const a = l.absolute[p][dir];
      const add = p === 'direct' ? null : l.added[p][dir];
      return [label, p === 'direct' ? 'direct (no hop)' : p === 'pipe' ? 'bare ws pipe' : 'relay', us(a.p50), us(a.p99), us(a.p999), add ? us(add.p50) : '—', add ? us(add.p99) : '—', add ? us(add.p999) : '—'];
    };
    parts.push(
      table(
        ['direction', 'path', 'p50', 'p99', 'p99.9', 'added p50', 'added p99', 'added p99.9'],
        [
          row('client→upstream', 'c2u', 'direct'),
          row('client→upstream', 'c2u', 'pipe'),
          row('client→upstream', 'c2u', 'relay'),
          ['client→upstream', '**relay ÷ pipe**', x(ratio(l.absolute.relay.c2u.p50, l.absolute.pipe.c2u.p50)), x(ratio(l.absolute.relay.c2u.p99, l.absolute.pipe.c2u.p99)), x(ratio(l.absolute.relay.c2u.p999, l.absolute.pipe.c2u.p999)), `**${x(l.ratio.c2u.p50)}**`, `**${x(l.ratio.c2u.p99)}**`, x(l.ratio.c2u.p999)],
          row('upstream→client', 'u2c', 'direct'),
          row('upstream→client', 'u2c', 'pipe'),
          row('upstream→client', 'u2c', 'relay'),
          ['upstream→client', '**relay ÷ pipe**', x(ratio(l.absolute.relay.u2c.p50, l.absolute.pipe.u2c.p50)), x(ratio(l.absolute.relay.u2c.p99, l.absolute.pipe.u2c.p99)), x(ratio(l.absolute.relay.u2c.p999, l.absolute.pipe.u2c.p999)), `**${x(l.ratio.u2c.p50)}**`, `**${x(l.ratio.u2c.p99)}**`, x(l.ratio.u2c.p999)],
        ],
        ['l', 'l'],
      ),
    );
    if (l.errors.length) parts.push(`\nErrors: ${l.errors.slice(0, 5).join('; ')}`);
    parts.push('');
  }
  if (r.throughput.length) {
    parts.push('## Real-time audio throughput');
    parts.push('');
    parts.push(
      `Each session: the client sends one 100 ms append every ${o.periodMs} ms and the upstream one 100 ms delta every ${o.periodMs} ms, sessions evenly phased. ` +
        `Steady-state window ${o.windowMs / 1000} s after ${o.warmupMs / 1000} s warm-up. ` +
        `**dropped** = sent but never received (${o.graceMs / 1000} s grace after the last send); **delayed** = arrived more than ${o.delayThresholdMs} ms after its scheduled time. ` +
        'Latency = one-way arrival − send; CPU = process.cpuUsage of the relay (or pipe) process over the window.',
    );
    parts.push('');
    parts.push(
      table(
        ['sessions', 'path', 'frames/s (of expected)', 'MB/s', 'dropped', 'delayed', 'c→u p50 / p99 / p99.9 µs', 'u→c p50 / p99 / p99.9 µs', 'CPU % of core', 'CPU µs per session-s', 'load-gen CPU'],
        r.throughput.map((t) => [
          t.sessions,
          t.path === 'direct' ? 'direct' : t.path === 'pipe' ? 'bare pipe' : 'relay',
          `${t.framesPerS.toFixed(0)} (${pct(t.framesPerS / (t.c2u.expectedFramesPerS + t.u2c.expectedFramesPerS))})`,
          t.mbPerS.toFixed(1),
          t.dropped,
          t.delayed,
          `${us(t.c2u.latencyUs.p50)} / ${us(t.c2u.latencyUs.p99)} / ${us(t.c2u.latencyUs.p999)}`,
          `${us(t.u2c.latencyUs.p50)} / ${us(t.u2c.latencyUs.p99)} / ${us(t.u2c.latencyUs.p999)}`,
          t.target ? pct(t.target.cpuCoreShare) : '—',
          t.target ? t.target.cpuUsPerSessionSecond.toFixed(0) : '—',
          pct(t.loadCpuCoreShare),
        ]),
        ['r', 'l'],
      ),
    );
    const troubles = r.throughput.filter((t) => t.connectFailed > 0 || t.foreignFrames > 0 || t.closedEarly > 0);
    for (const t of troubles) {
      parts.push(`\n${t.sessions} via ${t.path}: ${t.connectFailed} failed to connect (${t.connectError ?? ''}), ${t.closedEarly} closed early, ${t.foreignFrames} non-bench frames${t.foreignSample.length ? `, e.g. ${t.foreignSample[0]}` : ''}`);
    }
    parts.push('');
    parts.push('### Memory per session (KiB)');
    parts.push('');
    parts.push('Idle: all sessions connected, no traffic, after forced GC (`--expose-gc`), minus the same process before any session. Active: at the end of the streaming window (no GC).');
    parts.push('');
    parts.push(
      table(
        ['sessions', 'path', 'idle RSS', 'idle JS heap', 'idle external', 'active RSS', 'active JS heap'],
        r.throughput
          .filter((t) => t.target && t.sessions >= 100)
          .map((t) => {
            const m = t.target as NonNullable<ThroughputRow['target']>;
            return [t.sessions, t.path === 'pipe' ? 'bare pipe' : 'relay', kib(m.idleRssPerSession), kib(m.idleHeapPerSession), kib(m.idleExternalPerSession), kib(m.activeRssPerSession), kib(m.activeHeapPerSession)];
          }),
        ['r', 'l'],
      ),
    );
    parts.push('');
    parts.push('### Relay ÷ bare pipe');
    parts.push('');
    const ratioRows: (string | number)[][] = [];
    for (const n of o.sessions) {
      const rel = r.throughput.find((t) => t.sessions === n && t.path === 'relay');
      const pip = r.throughput.find((t) => t.sessions === n && t.path === 'pipe');
      if (!rel?.target || !pip?.target) continue;
      ratioRows.push([
        n,
        x(ratio(rel.framesPerS, pip.framesPerS)),
        x(ratio(rel.target.cpuUsPerSessionSecond, pip.target.cpuUsPerSessionSecond)),
        x(ratio(rel.c2u.latencyUs.p50, pip.c2u.latencyUs.p50)),
        x(ratio(rel.u2c.latencyUs.p50, pip.u2c.latencyUs.p50)),
        x(ratio(rel.c2u.latencyUs.p99, pip.c2u.latencyUs.p99)),
        x(ratio(rel.u2c.latencyUs.p99, pip.u2c.latencyUs.p99)),
        n >= 100 ? x(ratio(rel.target.idleRssPerSession, pip.target.idleRssPerSession)) : '—',
        n >= 100 ? x(ratio(rel.target.activeRssPerSession, pip.target.activeRssPerSession)) : '—',
      ]);
    }
    parts.push(table(['sessions', 'frames/s', 'CPU per session-s', 'c→u p50', 'u→c p50', 'c→u p99', 'u→c p99', 'idle RSS/session', 'active RSS/session'], ratioRows, ['r']));
    parts.push('');
  }
  if (r.heap.length) {
    parts.push('### What an idle session keeps on the JS heap (heap-snapshot diff, bytes per session)');
    parts.push('');
    for (const h of r.heap) {
      parts.push(`${h.kind === 'relay' ? 'Relay' : 'Bare pipe'}: ${(h.heapPerSession / 1024).toFixed(1)} KiB of JS heap per idle session (${h.sessions} sessions). Top groups (objects by constructor, closures by name):`);
      parts.push('');
      parts.push(table(['bytes / session', 'objects / session', 'group'], h.top.slice(0, 15).map((g) => [g.bytes.toFixed(0), g.count.toFixed(1), g.key.replace(/\|/g, '\\|')]), ['r', 'r', 'l']));
      parts.push('');
    }
  }
  if (r.profiles.length) {
    parts.push('## Where the time goes (CPU profile, steady-state window)');
    parts.push('');
    for (const p of r.profiles) {
      parts.push(formatProfile({ ...p.summary, top: p.summary.top.slice(0, 15) }, `${p.kind === 'relay' ? 'Relay' : 'Bare pipe'}, ${p.sessions} sessions (${p.file})`));
      parts.push('');
    }
  }
  parts.push('## Targets (measured, not asserted)');
  parts.push('');
  parts.push(table(['target', 'measured', 'met'], r.verdicts.map((v) => [v.target, v.measured, v.met === null ? 'n/a' : v.met ? 'yes' : '**no**']), ['l', 'l', 'l']));
  parts.push('');
  return parts.join('\n');
}

interface BenchResults {
  startedAt: string;
  finishedAt: string;
  machine: { cpuModel: string; cores: number; memoryBytes: number; node: string; os: string; ws: string; fastify: string; fdLimit: string };
  placement: string;
  options: Options;
  latency: LatencyReport | null;
  throughput: ThroughputRow[];
  heap: HeapBreakdown[];
  profiles: ProfileReport[];
  verdicts: Verdict[];
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Raw samples are large and not needed in the JSON: percentiles are kept, arrays dropped. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Float64Array) return undefined;
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2));
  const startedAt = new Date().toISOString();
  mkdirSync(RESULTS, { recursive: true });
  rmSync(LOGS, { recursive: true, force: true });
  const fdLimit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  const maxN = Math.max(...o.sessions);
  // Each session is two sockets in the relay and two in the load process (client + upstream end).
  if (fdLimit !== 'unlimited' && Number(fdLimit) < 2 * maxN + 256) {
    throw new Error(`open-file limit ${fdLimit} is too low for ${maxN} sessions (needs ${2 * maxN + 256}); raise it with ulimit -n`);
  }
  const place = placement();
  const machine = {
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryBytes: os.totalmem(),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    ws: packageVersion('ws'),
    fastify: packageVersion('fastify'),
    fdLimit,
  };
  log(`${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}; ${place.note}; open-file limit ${fdLimit}`);

  const load = spawnNode<LoadApi>('loadgen', 'loadgen.ts', place.loadCpu, place.pinned, []);
  const cleanup = (): void => {
    load.child.kill('SIGKILL');
  };
  process.on('exit', cleanup);
  try {
    const init = await load.call('init', {}, 60_000);
    const upstream = { base: init.upstreamBaseUrl, ws: init.upstreamWsUrl };
    const latency = await latencyPhase(o, load, upstream, place);
    const throughput = await throughputPhase(o, load, upstream, place);
    const heap = o.heap ? await heapPhase(o, load, upstream, place) : [];
    const profiles = o.profile ? await profilePhase(o, load, upstream, place) : [];
    const results: BenchResults = {
      startedAt,
      finishedAt: new Date().toISOString(),
      machine,
      placement: place.note,
      options: o,
      latency,
      throughput,
      heap,
      profiles,
      verdicts: verdicts(latency, throughput, o),
    };
    const md = renderMarkdown(results);
    writeFileSync(path.join(RESULTS, 'latest.json'), `${JSON.stringify(results, jsonReplacer, 2)}\n`);
    writeFileSync(path.join(RESULTS, 'latest.md'), `${md}\n`);
    console.log(md);
    log(`wrote ${path.relative(REPO, path.join(RESULTS, 'latest.json'))} and latest.md; process logs in ${path.relative(REPO, LOGS)}`);
    if (readdirSync(LOGS).length === 0) rmSync(LOGS, { recursive: true, force: true });
  } finally {
    load.child.disconnect();
    await load.waitExit(10_000);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
