/**
 * The relay against a bare ws-to-ws pipe, side by side on this machine: added latency per
 * frame, real-time audio throughput at 1 / 100 / 1,000 sessions, CPU per session-second and
 * memory per session. `npm run bench` (several minutes) or `npm run bench -- --quick` (< 1 min).
 *
 * Processes: this orchestrator; the process under test (relay or pipe), pinned to core 0; the
 * load process (clients and a local upstream), pinned to core 1. See bench/README.md.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { UpstreamMasking } from '../src/config/config';
import { background, isLinuxProc, snapshot, type Background, type CpuSnapshot } from './lib/cpu-monitor';
import { readProfile, summariseProfile, type ProfileSummary } from './lib/cpuprofile';
import { frameBytes } from './lib/frames';
import { productionNodeFlags } from './lib/node-flags';
import { diffPerSession, groupSnapshot, totalBytes } from './lib/heapsnapshot';
import type { ConnectResult, DirectionResult, LoadApi, MainPath, PathKind, ProcSample, StreamResult, TargetApi, TargetKind } from './lib/protocol';
import { renderMarkdown, verdicts } from './lib/report';
import type { BenchResults, DirectionSummary, HeapBreakdown, LatencyReport, Machine, Options, ProfileReport, ThroughputRow, Triple } from './lib/results';
import { Peer } from './lib/rpc';
import { concatSamples, percentiles, ratio, type Percentiles } from './lib/stats';

const REPO = path.resolve(__dirname, '..');
const RESULTS = path.join(REPO, 'bench', 'results');
/** The relay with its layers peeled off (`--diagnose`), streamed and profiled like the main paths. */
const DIAGNOSTIC_PATHS: TargetKind[] = ['relay-core', 'relay-core-metered', 'session-ws'];
const LOGS = path.join(RESULTS, 'logs');
const PROFILES = path.join(RESULTS, 'profiles');

function parseOptions(argv: string[]): Options {
  const has = (f: string): boolean => argv.includes(f);
  const value = (f: string): string | undefined => argv.find((a) => a.startsWith(`${f}=`))?.slice(f.length + 1);
  const quick = has('--quick');
  const production = productionNodeFlags();
  return {
    quick,
    // 300 sits just under one core's capacity on a small VM: the cost per session is read there.
    sessions: value('--sessions')?.split(',').map(Number).filter((n) => n > 0) ?? (quick ? [100, 300] : [1, 100, 300, 1000]),
    profileSessions: Number(value('--profile-sessions') ?? 300),
    latencySamples: Number(value('--latency-samples') ?? (quick ? 1200 : 12000)),
    latencyRounds: quick ? 3 : 6,
    rounds: Number(value('--rounds') ?? (quick ? 1 : 3)),
    latencyGapMs: 1,
    warmupMs: quick ? 1000 : 3000,
    windowMs: Number(value('--window-s') ?? (quick ? 2 : 15)) * 1000,
    // Long enough to outlast a stall (a mark-compact of a heap full of queued frames takes seconds):
    // a frame on an open connection is late, never lost, until nothing at all arrives for this long.
    graceMs: quick ? 2000 : 10_000,
    maxGraceMs: quick ? 5_000 : 120_000,
    periodMs: 100,
    delayThresholdMs: 50,
    directThroughput: !quick && !has('--no-direct'),
    diagnose: has('--diagnose'),
    translated: has('--translated'),
    profile: has('--profile') || (!quick && !has('--no-profile')),
    heap: has('--heap') || (!quick && !has('--no-heap')),
    connectConcurrency: 100,
    attempts: Number(value('--attempts') ?? (quick ? 1 : 3)),
    quietWaitMs: Number(value('--quiet-wait-s') ?? (quick ? 0 : 60)) * 1000,
    noisyShare: 0.25,
    quietShare: 0.15,
    phases: (value('--only') ?? 'latency,throughput,heap,profile').split(','),
    targetNodePath: value('--target-node-path') ?? null,
    loadNodePath: value('--load-node-path') ?? null,
    // Default: the flags `npm start` runs the relay with; given, they replace them (for experiments).
    targetNodeArgs: value('--target-node-args')?.split(' ').filter(Boolean) ?? production,
    loadNodeArgs: value('--load-node-args')?.split(' ').filter(Boolean) ?? production,
    // The local upstream is ws://; production upstreams are wss://, where UPSTREAM_MASKING=auto
    // sends zero masks. `none` measures that; `random` measures a plain ws:// upstream.
    upstreamMasking: (value('--upstream-masking') ?? 'none') as UpstreamMasking,
  };
}

/**
 * SCHED_RR at the lowest real-time priority (ahead of every ordinary process) for the event-loop
 * thread only: V8's GC helpers and libuv's pool share the pinned core, and at real-time priority
 * they would hold it for a whole 100 ms round-robin slice.
 */
function setRealtime(pid: number | undefined, on: boolean): void {
  if (pid) works('chrt', on ? ['-r', '-p', '1', String(pid)] : ['-o', '-p', '0', String(pid)]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---- placement: one core for the relay, one for the load ------------------------------------------

interface Placement {
  pinned: boolean;
  relayCpu: number;
  loadCpu: number;
  /** Command prefix (taskset) for the process under test and for the load process. */
  relayPrefix: string[];
  loadPrefix: string[];
  /** Whether each bench process gets its own scheduling group at nice -20 (see spawnNode). */
  boost: boolean;
  /** Whether the latency phase may run at real-time priority (chrt). */
  realtime: boolean;
  note: string;
}

function works(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Whether a child's scheduling group may be given a higher priority (root, or CAP_SYS_NICE). */
function canBoost(): boolean {
  const probe = spawn('sleep', ['5'], { detached: true, stdio: 'ignore' });
  try {
    writeFileSync(`/proc/${probe.pid}/autogroup`, '-20');
    return true;
  } catch {
    return false;
  } finally {
    probe.kill('SIGKILL');
  }
}

function placement(): Placement {
  const cores = os.cpus().length;
  const boost = canBoost();
  const realtime = works('chrt', ['-r', '1', 'true']);
  const boostNote = boost
    ? 'each bench process in its own scheduling group at nice -20, so the other work on this shared machine yields to it'
    : 'normal priority (raising it was not permitted)';
  if (cores < 2 || !works('taskset', ['-c', '0', 'true'])) {
    const why = cores < 2 ? 'one core: relay and load generator share it (figures are pessimistic)' : 'taskset unavailable: processes not pinned';
    return { pinned: false, relayCpu: -1, loadCpu: -1, relayPrefix: [], loadPrefix: [], boost, realtime, note: `${why}; ${boostNote}` };
  }
  const loadCpu = cores - 1;
  // The orchestrator mostly sleeps, but it must never wake on the relay's core.
  works('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)]);
  return {
    pinned: true,
    relayCpu: 0,
    loadCpu,
    relayPrefix: ['taskset', '-c', '0'],
    loadPrefix: ['taskset', '-c', String(loadCpu)],
    boost,
    realtime,
    note: `the relay (or pipe) process pinned to core 0 and the load generator (clients + local upstream) to core ${loadCpu} with taskset, one core each; ${boostNote}${realtime ? '; the latency phase at real-time priority (SCHED_RR 1)' : ''}; ${cores} cores in all`,
  };
}

function spawnNode<A extends TargetApi | LoadApi>(name: string, script: string, prefix: string[], boost: boolean, nodeArgs: string[], nodePath: string | null = null): Peer<A> {
  mkdirSync(LOGS, { recursive: true });
  const logFd = openSync(path.join(LOGS, `${name}.log`), 'a');
  const [cmd, ...args] = [...prefix, process.execPath, ...nodeArgs, '--import', 'tsx', path.join(REPO, 'bench', script)];
  // detached = a new session, hence (with autogroup scheduling) a scheduling group of its own:
  // nice values only weigh within a group, so the group itself is what gets the priority.
  const child = spawn(cmd, args, {
    cwd: REPO,
    detached: boost,
    stdio: ['ignore', logFd, logFd, 'ipc'],
    serialization: 'advanced',
    env: { ...process.env, NODE_OPTIONS: '', ...(nodePath ? { NODE_PATH: nodePath } : {}) },
  });
  closeSync(logFd);
  if (boost && child.pid) {
    try {
      writeFileSync(`/proc/${child.pid}/autogroup`, '-20');
    } catch {
      /* the bench still runs, at normal priority */
    }
  }
  return new Peer<A>(name, child);
}

// ---- other processes' load ----------------------------------------------------------------------

class Guard {
  private readonly targets = new Set<number>();
  readonly enabled = isLinuxProc();

  constructor(
    private readonly o: Options,
    private readonly place: Placement,
    private readonly loadPid: number,
  ) {}

  watch(pid: number | undefined): void {
    if (pid) this.targets.add(pid);
  }

  unwatch(pid: number | undefined): void {
    if (pid) this.targets.delete(pid);
  }

  snap(): CpuSnapshot {
    return snapshot([...this.targets, this.loadPid, process.pid]);
  }

  between(a: CpuSnapshot, b: CpuSnapshot): Background | null {
    if (!this.enabled) return null;
    const owners: number[][] = [];
    if (this.place.pinned) {
      owners[this.place.relayCpu] = [...this.targets];
      owners[this.place.loadCpu] = [this.loadPid, process.pid];
    }
    return background(a, b, owners, { target: [...this.targets], load: [this.loadPid] });
  }

  /** Other processes' share of the busier bench core (all cores, averaged, when not pinned). */
  severity(b: Background): number {
    if (this.place.pinned) return Math.max(b.foreign[this.place.relayCpu] ?? 0, b.foreign[this.place.loadCpu] ?? 0);
    return b.foreignTotal / Math.max(1, b.foreign.length);
  }

  /** Noisy: other processes used more than the allowed share of a bench core during the window. */
  noisy(b: Background | null): boolean {
    return b !== null && this.severity(b) > this.o.noisyShare;
  }

  private idleEnough(b: Background): boolean {
    return this.severity(b) < this.o.quietShare;
  }

  private lastComplaint = -Infinity;

  /** Waits (bounded) until other processes leave the bench's cores nearly idle. */
  async quiet(): Promise<void> {
    if (!this.enabled || this.o.quietWaitMs <= 0) return;
    const started = Date.now();
    for (;;) {
      const a = this.snap();
      await sleep(1000);
      const b = this.between(a, this.snap());
      if (!b || this.idleEnough(b)) return;
      if (Date.now() - started > this.o.quietWaitMs) {
        // Said at most every half minute: on a busy machine every scenario would say it.
        if (Date.now() - this.lastComplaint > 30_000) {
          log(`  other processes keep the cores busy (${b.foreign.map((f) => `${Math.round(100 * f)}%`).join(' / ')}); measuring anyway, at the higher priority`);
          this.lastComplaint = Date.now();
        }
        return;
      }
    }
  }
}

// ---- the bench ----------------------------------------------------------------------------------

interface StartedTarget {
  kind: TargetKind;
  peer: Peer<TargetApi>;
  url: string;
  headers: Record<string, string>;
  dataDir: string;
}

/** One steady-state window of one path. */
interface Window {
  stream: StreamResult;
  loadW0: ProcSample;
  loadW1: ProcSample;
  w0?: ProcSample;
  w1?: ProcSample;
  background: Background | null;
  attempt: number;
}

/** One path at one session count: its process, its sessions, and its windows. */
interface PathRun {
  path: PathKind;
  target?: StartedTarget;
  url: string;
  headers: Record<string, string>;
  connect: ConnectResult;
  base?: ProcSample;
  idle?: ProcSample;
  openSessions: number;
  windows: Window[];
}

const wsUrl = (baseUrl: string): string => `${baseUrl.replace(/^http/, 'ws')}/v1/realtime?model=gpt-realtime`;
const cpuUs = (a: ProcSample, b: ProcSample): number => b.cpuUserUs + b.cpuSystemUs - (a.cpuUserUs + a.cpuSystemUs);

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

function summariseDirection(d: DirectionResult, sessions: number, windowS: number, periodMs: number): DirectionSummary {
  return {
    expectedFramesPerS: (sessions * 1000) / periodMs,
    framesPerS: d.deliveredInWindow / windowS,
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

class Bench {
  private targetCounter = 0;

  constructor(
    private readonly o: Options,
    private readonly load: Peer<LoadApi>,
    private readonly upstream: { base: string; ws: string },
    private readonly place: Placement,
    private readonly guard: Guard,
  ) {}

  async startTarget(kind: TargetKind, extraNodeArgs: string[] = [], realtime = false): Promise<StartedTarget> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `relay-bench-${kind}-`));
    const peer = spawnNode<TargetApi>(`${kind}-${++this.targetCounter}`, 'target.ts', this.place.relayPrefix, this.place.boost, ['--expose-gc', ...this.o.targetNodeArgs, ...extraNodeArgs], this.o.targetNodePath);
    if (realtime) setRealtime(peer.child.pid, true);
    this.guard.watch(peer.child.pid);
    const adminToken = randomBytes(24).toString('base64url');
    const { baseUrl } = await peer.call('start', { kind, upstreamBaseUrl: this.upstream.base, dataDir, adminToken, upstreamMasking: this.o.upstreamMasking }, 60_000);
    const headers: Record<string, string> = {};
    // The relay is measured as deployed: every session authenticates with an admin-created API key.
    if (kind === 'relay' || kind === 'relay-translated' || kind === 'relay-translated-up') headers.authorization = `Bearer ${await createApiKey(baseUrl, adminToken)}`;
    // --translated: a beta-era client on the GA-only upstream, the relay translating every frame back.
    if (kind === 'relay-translated') headers['OpenAI-Beta'] = 'realtime=v1';
    return { kind, peer, url: wsUrl(baseUrl), headers, dataDir };
  }

  async stopTarget(t: StartedTarget): Promise<void> {
    try {
      await t.peer.call('stop', {}, 60_000);
    } catch (err) {
      log(`  stopping ${t.kind}: ${err instanceof Error ? err.message : String(err)}`);
    }
    await t.peer.waitExit(30_000);
    this.guard.unwatch(t.peer.child.pid);
    rmSync(t.dataDir, { recursive: true, force: true });
  }

  // ---- latency --------------------------------------------------------------------------------

  async latency(): Promise<LatencyReport> {
    const o = this.o;
    log(`latency: ${o.latencySamples} frames each way per path, paths taking turns frame by frame${this.place.realtime ? ', real-time priority' : ''}`);
    // Real-time priority takes the shared machine's other work out of the microseconds being
    // measured; safe here because one frame in flight keeps every process mostly idle.
    const rt = this.place.realtime;
    const [relay, pipe] = await Promise.all([this.startTarget('relay', [], rt), this.startTarget('pipe', [], rt)]);
    if (rt) setRealtime(this.load.child.pid, true);
    const paths: Record<MainPath, { url: string; headers: Record<string, string> }> = {
      direct: { url: this.upstream.ws, headers: {} },
      pipe: { url: pipe.url, headers: pipe.headers },
      relay: { url: relay.url, headers: relay.headers },
    };
    const order: MainPath[] = ['direct', 'pipe', 'relay'];
    const got: Record<MainPath, { c2u: Float64Array[]; u2c: Float64Array[] }> = { direct: { c2u: [], u2c: [] }, pipe: { c2u: [], u2c: [] }, relay: { c2u: [], u2c: [] } };
    const errors: string[] = [];
    let worst: Background | null = null;
    let discarded = 0;
    const perRound = Math.ceil(o.latencySamples / o.latencyRounds);
    try {
      for (let r = 0; r < o.latencyRounds; r++) {
        for (let attempt = 1; ; attempt++) {
          await this.guard.quiet();
          const a = this.guard.snap();
          const res = await this.load.call('latency', { paths: order.map((p) => paths[p]), samples: perRound, warmup: 100, gapMs: o.latencyGapMs });
          const b = this.guard.between(a, this.guard.snap());
          if (this.guard.noisy(b) && attempt < o.attempts) {
            discarded++;
            continue;
          }
          if (b && (!worst || this.guard.severity(b) > this.guard.severity(worst))) worst = b;
          order.forEach((p, k) => {
            got[p].c2u.push(res.perPath[k].c2u);
            got[p].u2c.push(res.perPath[k].u2c);
          });
          errors.push(...res.errors);
          break;
        }
      }
    } finally {
      if (rt) setRealtime(this.load.child.pid, false);
      await this.stopTarget(relay);
      await this.stopTarget(pipe);
    }
    const absolute = {} as LatencyReport['absolute'];
    for (const p of order) absolute[p] = { c2u: percentiles(concatSamples(got[p].c2u)), u2c: percentiles(concatSamples(got[p].u2c)) };
    const minus = (a: Percentiles, b: Percentiles): Triple => ({ p50: a.p50 - b.p50, p99: a.p99 - b.p99, p999: a.p999 - b.p999 });
    const over = (a: Triple, b: Triple): Triple => ({ p50: ratio(a.p50, b.p50), p99: ratio(a.p99, b.p99), p999: ratio(a.p999, b.p999) });
    const added = {
      pipe: { c2u: minus(absolute.pipe.c2u, absolute.direct.c2u), u2c: minus(absolute.pipe.u2c, absolute.direct.u2c) },
      relay: { c2u: minus(absolute.relay.c2u, absolute.direct.c2u), u2c: minus(absolute.relay.u2c, absolute.direct.u2c) },
    };
    return {
      method:
        'Three sessions open at once, one per path (direct = client straight to the upstream, bare pipe, relay); frames take turns between them, ' +
        'one frame in flight: the client sends an append, the upstream answers it at once with a delta, ' +
        `then ${o.latencyGapMs} ms of quiet. Both one-way times are read on the load process's single clock; added = path − direct`,
      samplesPerPath: absolute.relay.c2u.count,
      frameBytes: { append: frameBytes('append'), delta: frameBytes('delta') },
      absolute,
      added,
      ratio: { c2u: over(added.relay.c2u, added.pipe.c2u), u2c: over(added.relay.u2c, added.pipe.u2c) },
      background: worst,
      discardedNoisyCalls: discarded,
      errors,
    };
  }

  // ---- streaming --------------------------------------------------------------------------------

  /**
   * Opens `sessions` sessions on every path at once, then lets the paths stream in turns
   * (rounds × paths windows): background load that comes and goes on this shared machine then
   * falls on all paths alike, and each process is measured as it was started, fresh.
   */
  async runPaths(sessions: number, kinds: PathKind[], rounds: number, extraNodeArgs: string[] = []): Promise<PathRun[]> {
    const o = this.o;
    await this.guard.quiet();
    const runs: PathRun[] = [];
    try {
      // Started together: each is idle until its own sessions connect, and start-up is slow (tsx, SQLite).
      const targets = await Promise.all(kinds.map((path) => (path === 'direct' ? undefined : this.startTarget(path, extraNodeArgs))));
      kinds.forEach((path, i) => {
        const target = targets[i];
        runs.push({ path, target, url: target?.url ?? this.upstream.ws, headers: target?.headers ?? {}, connect: { connected: 0, failed: 0, ms: 0, firstError: null }, openSessions: 0, windows: [] });
      });
      for (const r of runs) {
        if (r.target) {
          // One session first, so what loads lazily on the first connection is in the baseline.
          await this.load.call('connect', { group: `${r.path}-warm`, url: r.url, headers: r.headers, sessions: 1, concurrency: 1, timeoutMs: 30_000 });
          await this.load.call('disconnect', { group: `${r.path}-warm` });
          await sleep(300);
        }
        r.base = await r.target?.peer.call('sample', { gc: true });
        r.connect = await this.load.call('connect', { group: r.path, url: r.url, headers: r.headers, sessions, concurrency: o.connectConcurrency, timeoutMs: 30_000 });
        if (r.connect.failed > 0) log(`  ${r.connect.failed} of ${sessions} sessions via ${r.path} failed to connect: ${r.connect.firstError}`);
        await sleep(1000);
        r.idle = await r.target?.peer.call('sample', { gc: true });
        r.openSessions = r.target ? (await r.target.peer.call('openSessions', {})).sessions : 0;
      }
      const perWindowMs = Math.max(1000, Math.round(o.windowMs / rounds));
      for (let round = 0; round < rounds; round++) {
        for (let k = 0; k < runs.length; k++) {
          const r = runs[(round + k) % runs.length];
          for (let attempt = 1; ; attempt++) {
            const w = await this.window(r, perWindowMs, attempt);
            if (this.guard.noisy(w.background) && attempt < o.attempts) {
              log(`  ${r.path}: other processes took ${Math.round(100 * this.guard.severity(w.background as Background))}% of a bench core; measuring that window again`);
              await this.guard.quiet();
              continue;
            }
            r.windows.push(w);
            break;
          }
        }
      }
    } finally {
      await this.load.call('disconnect', {});
      for (const r of runs) if (r.target) await this.stopTarget(r.target);
    }
    return runs;
  }

  private async window(r: PathRun, windowMs: number, attempt: number): Promise<Window> {
    const o = this.o;
    await this.load.call('streamStart', { periodMs: o.periodMs, group: r.path });
    await sleep(o.warmupMs);
    const c0 = this.guard.snap();
    const [loadW0, w0] = await Promise.all([this.load.call('sample', {}), r.target?.peer.call('sample', { gc: false })]);
    await sleep(windowMs);
    const [loadW1, w1] = await Promise.all([this.load.call('sample', {}), r.target?.peer.call('sample', { gc: false })]);
    const background = this.guard.between(c0, this.guard.snap());
    const stream = await this.load.call('streamStop', { windowStartUs: loadW0.nowUs, windowEndUs: loadW1.nowUs, graceMs: o.graceMs, maxGraceMs: o.maxGraceMs, delayThresholdMs: o.delayThresholdMs });
    return { stream, loadW0, loadW1, w0, w1, background, attempt };
  }

  private row(sessions: number, r: PathRun): ThroughputRow {
    const o = this.o;
    const merge = (pick: (s: StreamResult) => DirectionResult): DirectionResult => {
      const parts = r.windows.map((w) => pick(w.stream));
      const sum = (f: (d: DirectionResult) => number): number => parts.reduce((a, d) => a + f(d), 0);
      return {
        sentInWindow: sum((d) => d.sentInWindow),
        receivedInWindow: sum((d) => d.receivedInWindow),
        deliveredInWindow: sum((d) => d.deliveredInWindow),
        dropped: sum((d) => d.dropped),
        reordered: sum((d) => d.reordered),
        delayed: sum((d) => d.delayed),
        bytesInWindow: sum((d) => d.bytesInWindow),
        latencyUs: concatSamples(parts.map((d) => d.latencyUs)),
        latenessUs: concatSamples(parts.map((d) => d.latenessUs)),
        sendLagUs: concatSamples(parts.map((d) => d.sendLagUs)),
      };
    };
    const windowS = r.windows.reduce((a, w) => a + w.stream.windowMs, 0) / 1000;
    const c2u = summariseDirection(merge((s) => s.c2u), sessions, windowS, o.periodMs);
    const u2c = summariseDirection(merge((s) => s.u2c), sessions, windowS, o.periodMs);
    const n = Math.max(1, r.connect.connected);
    const sumCpu = (a: (w: Window) => ProcSample | undefined, b: (w: Window) => ProcSample | undefined): { cpu: number; wall: number } => {
      let cpu = 0;
      let wall = 0;
      for (const w of r.windows) {
        const x0 = a(w);
        const x1 = b(w);
        if (!x0 || !x1) continue;
        cpu += cpuUs(x0, x1);
        wall += x1.hrUs - x0.hrUs;
      }
      return { cpu, wall };
    };
    const load = sumCpu((w) => w.loadW0, (w) => w.loadW1);
    const tgt = sumCpu((w) => w.w0, (w) => w.w1);
    const last = r.windows[r.windows.length - 1]?.w1;
    let worst: Background | null = null;
    for (const w of r.windows) if (w.background && (!worst || this.guard.severity(w.background) > this.guard.severity(worst))) worst = w.background;
    return {
      sessions,
      path: r.path,
      connected: r.connect.connected,
      connectFailed: r.connect.failed,
      connectMs: r.connect.ms,
      connectError: r.connect.firstError,
      windowS,
      c2u,
      u2c,
      framesPerS: c2u.framesPerS + u2c.framesPerS,
      mbPerS: c2u.mbPerS + u2c.mbPerS,
      dropped: c2u.dropped + u2c.dropped,
      delayed: c2u.delayed + u2c.delayed,
      foreignFrames: r.windows.reduce((a, w) => a + w.stream.foreignFrames, 0),
      foreignSample: r.windows.flatMap((w) => w.stream.foreignSample).slice(0, 3),
      closedEarly: r.windows.reduce((a, w) => a + w.stream.closedEarly, 0),
      cutOff: r.windows.some((w) => w.stream.cutOff),
      loadCpuCoreShare: load.wall > 0 ? load.cpu / load.wall : NaN,
      target:
        r.base && r.idle && last && tgt.wall > 0
          ? {
              cpuCoreShare: tgt.cpu / tgt.wall,
              cpuUsPerSessionSecond: tgt.cpu / (n * (tgt.wall / 1e6)),
              baseRss: r.base.rss,
              idleRssPerSession: (r.idle.rss - r.base.rss) / n,
              idleHeapPerSession: (r.idle.heapUsed - r.base.heapUsed) / n,
              idleExternalPerSession: (r.idle.external - r.base.external) / n,
              activeRssPerSession: (last.rss - r.base.rss) / n,
              activeHeapPerSession: (last.heapUsed - r.base.heapUsed) / n,
              openSessionsSeen: r.openSessions,
            }
          : undefined,
      background: worst,
      turns: r.windows.map((w) => ({
        cpuCoreShare: w.w0 && w.w1 ? cpuUs(w.w0, w.w1) / (w.w1.hrUs - w.w0.hrUs) : NaN,
        framesPerS: (w.stream.c2u.deliveredInWindow + w.stream.u2c.deliveredInWindow) / (w.stream.windowMs / 1000),
        otherProcs: w.background ? this.guard.severity(w.background) : NaN,
      })),
      noisy: r.windows.some((w) => this.guard.noisy(w.background)),
      attempt: Math.max(1, ...r.windows.map((w) => w.attempt)),
    };
  }

  async throughput(): Promise<ThroughputRow[]> {
    const rows: ThroughputRow[] = [];
    const kinds: PathKind[] = [...(this.o.directThroughput ? (['direct'] as const) : []), 'pipe', 'relay', ...(this.o.translated ? (['relay-translated', 'relay-translated-up'] as const) : []), ...(this.o.diagnose ? DIAGNOSTIC_PATHS : [])];
    for (const n of this.o.sessions) {
      log(`throughput: ${n} sessions on each of ${kinds.join(', ')}; ${this.o.rounds} round(s) of ${(this.o.windowMs / this.o.rounds / 1000).toFixed(1)} s windows after ${this.o.warmupMs / 1000} s warm-up`);
      for (const r of await this.runPaths(n, kinds, this.o.rounds)) {
        const row = this.row(n, r);
        log(`  ${r.path}: ${row.framesPerS.toFixed(0)} frames/s, ${row.dropped} dropped, ${row.delayed} delayed${row.target ? `, CPU ${(100 * row.target.cpuCoreShare).toFixed(1)}% of a core` : ''}, load gen ${(100 * row.loadCpuCoreShare).toFixed(1)}%`);
        rows.push(row);
      }
    }
    return rows;
  }

  // ---- memory breakdown -----------------------------------------------------------------------

  async heap(): Promise<HeapBreakdown[]> {
    const n = Math.max(...this.o.sessions);
    const out: HeapBreakdown[] = [];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'relay-bench-heap-'));
    try {
      for (const kind of ['pipe', 'relay'] as const) {
        log(`memory breakdown: heap snapshots of the ${kind} with none and ${n} idle sessions`);
        const t = await this.startTarget(kind);
        try {
          // One session first, so code loaded lazily on the first connection is in both snapshots.
          await this.load.call('connect', { group: kind, url: t.url, headers: t.headers, sessions: 1, concurrency: 1, timeoutMs: 30_000 });
          await this.load.call('disconnect', {});
          await sleep(500);
          const before = (await t.peer.call('heapSnapshot', { file: path.join(dir, `${kind}-0.heapsnapshot`) }, 300_000)).file;
          const c = await this.load.call('connect', { group: kind, url: t.url, headers: t.headers, sessions: n, concurrency: this.o.connectConcurrency, timeoutMs: 30_000 });
          await sleep(1000);
          const after = (await t.peer.call('heapSnapshot', { file: path.join(dir, `${kind}-${n}.heapsnapshot`) }, 300_000)).file;
          await this.load.call('disconnect', {});
          const b = groupSnapshot(before);
          const a = groupSnapshot(after);
          const k = Math.max(1, c.connected);
          out.push({
            kind,
            sessions: c.connected,
            heapPerSession: (totalBytes(a.byConstructor) - totalBytes(b.byConstructor)) / k,
            top: diffPerSession(b.byConstructor, a.byConstructor, k, 20),
            byOwner: diffPerSession(b.byOwner, a.byOwner, k, 20),
          });
        } finally {
          await this.stopTarget(t);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return out;
  }

  // ---- CPU profiles -----------------------------------------------------------------------------

  async profiles(): Promise<ProfileReport[]> {
    const n = this.o.profileSessions;
    const out: ProfileReport[] = [];
    const kinds: TargetKind[] = ['relay', 'pipe', ...(this.o.diagnose ? DIAGNOSTIC_PATHS : [])];
    for (const kind of kinds) {
      log(`profile: the ${kind} under node --cpu-prof with ${n} streaming sessions`);
      // A directory per run: tsx's loader runs on a worker thread, which writes a profile of its own.
      const dir = path.join(PROFILES, `${kind}-${n}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const [run] = await this.runPaths(n, [kind], 1, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
      const w = run.windows[run.windows.length - 1];
      if (!w?.w0 || !w.w1) continue;
      let best: { file: string; summary: ProfileSummary } | null = null;
      for (let i = 0; i < 50 && readdirSync(dir).length === 0; i++) await sleep(100);
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.cpuprofile'))) {
        // Cropped to the steady-state window: start-up and the TS transform are not the hot path.
        const summary = summariseProfile(readProfile(path.join(dir, f)), { fromUs: w.w0.hrUs, toUs: w.w1.hrUs, top: 25 });
        if (!best || summary.busyMs > best.summary.busyMs) best = { file: path.join(dir, f), summary };
      }
      if (!best) {
        log(`  no profile written in ${dir}`);
        continue;
      }
      out.push({ kind, sessions: n, file: path.relative(REPO, best.file), summary: best.summary, background: w.background });
    }
    return out;
  }
}

// ---- main -----------------------------------------------------------------------------------------

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Raw samples are large and already summarised: the JSON keeps the percentiles. */
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
  // Each session is two sockets in the relay and two in the load process (client end + upstream end).
  if (fdLimit !== 'unlimited' && Number(fdLimit) < 2 * maxN + 256) {
    throw new Error(`open-file limit ${fdLimit} is too low for ${maxN} sessions (needs ${2 * maxN + 256}): raise it with ulimit -n`);
  }
  const place = placement();
  const cpus = os.cpus();
  const machine: Machine = {
    cpuModel: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryBytes: os.totalmem(),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
    ws: packageVersion('ws'),
    fastify: packageVersion('fastify'),
    fdLimit,
  };
  log(`${machine.cpuModel}, ${machine.cores} cores, Node ${machine.node}, open-file limit ${fdLimit}`);
  log(`placement: ${place.note}`);

  const load = spawnNode<LoadApi>('loadgen', 'loadgen.ts', place.loadPrefix, place.boost, o.loadNodeArgs, o.loadNodePath);
  process.on('exit', () => load.child.kill('SIGKILL'));
  try {
    const init = await load.call('init', {}, 60_000);
    const guard = new Guard(o, place, load.child.pid ?? 0);
    const bench = new Bench(o, load, { base: init.upstreamBaseUrl, ws: init.upstreamWsUrl }, place, guard);
    const latency = o.phases.includes('latency') ? await bench.latency() : null;
    const throughput = o.phases.includes('throughput') ? await bench.throughput() : [];
    const heap = o.heap && o.phases.includes('heap') ? await bench.heap() : [];
    const profiles = o.profile && o.phases.includes('profile') ? await bench.profiles() : [];
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
    log('wrote bench/results/latest.json and bench/results/latest.md; process logs in bench/results/logs/');
  } finally {
    if (load.child.connected) load.child.disconnect();
    await load.waitExit(10_000);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
