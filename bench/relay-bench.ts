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
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { background, isLinuxProc, snapshot, type Background, type CpuSnapshot } from './lib/cpu-monitor';
import { readProfile, summariseProfile } from './lib/cpuprofile';
import { frameBytes } from './lib/frames';
import { diffPerSession, groupSnapshot } from './lib/heapsnapshot';
import type { DirectionResult, LoadApi, PathKind, ProcSample, StreamResult, TargetApi, TargetKind } from './lib/protocol';
import { renderMarkdown, verdicts } from './lib/report';
import type { BenchResults, DirectionSummary, HeapBreakdown, LatencyReport, Machine, Options, ProfileReport, ThroughputRow, Triple } from './lib/results';
import { Peer } from './lib/rpc';
import { concatSamples, percentiles, ratio, type Percentiles } from './lib/stats';

const REPO = path.resolve(__dirname, '..');
const RESULTS = path.join(REPO, 'bench', 'results');
const LOGS = path.join(RESULTS, 'logs');
const PROFILES = path.join(RESULTS, 'profiles');

function parseOptions(argv: string[]): Options {
  const has = (f: string): boolean => argv.includes(f);
  const value = (f: string): string | undefined => argv.find((a) => a.startsWith(`${f}=`))?.slice(f.length + 1);
  const quick = has('--quick');
  return {
    quick,
    sessions: value('--sessions')?.split(',').map(Number).filter((n) => n > 0) ?? (quick ? [1, 1000] : [1, 100, 1000]),
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
    attempts: Number(value('--attempts') ?? (quick ? 1 : 3)),
    quietWaitMs: Number(value('--quiet-wait-s') ?? (quick ? 5 : 60)) * 1000,
    noisyShare: 0.15,
  };
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
  /** Command prefix (nice, taskset) for the process under test and for the load process. */
  relayPrefix: string[];
  loadPrefix: string[];
  note: string;
}

function works(cmd: string, args: string[]): boolean {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() !== 'fail';
  } catch {
    return false;
  }
}

function placement(): Placement {
  const cores = os.cpus().length;
  // Other processes on a shared machine preempt the bench less when it runs at a higher priority.
  const nice = works('nice', ['-n', '-10', 'sh', '-c', '[ "$(nice)" = "-10" ] && echo ok || echo fail']) ? ['nice', '-n', '-10'] : [];
  const niceNote = nice.length ? 'bench processes at nice -10' : 'normal priority (nice -10 not permitted)';
  if (cores < 2 || !works('taskset', ['-c', '0', 'true'])) {
    const why = cores < 2 ? 'one core: relay and load generator share it (figures are pessimistic)' : 'taskset unavailable: processes not pinned';
    return { pinned: false, relayCpu: -1, loadCpu: -1, relayPrefix: nice, loadPrefix: nice, note: `${why}; ${niceNote}` };
  }
  const loadCpu = cores - 1;
  // The orchestrator mostly sleeps, but it must never wake on the relay's core.
  works('taskset', ['-a', '-p', '-c', String(loadCpu), String(process.pid)]);
  return {
    pinned: true,
    relayCpu: 0,
    loadCpu,
    relayPrefix: [...nice, 'taskset', '-c', '0'],
    loadPrefix: [...nice, 'taskset', '-c', String(loadCpu)],
    note: `the relay (or pipe) process pinned to core 0 and the load generator (clients + local upstream) to core ${loadCpu} with taskset, one core each; ${niceNote}; ${cores} cores in all`,
  };
}

function spawnNode<A extends TargetApi | LoadApi>(name: string, script: string, prefix: string[], nodeArgs: string[]): Peer<A> {
  mkdirSync(LOGS, { recursive: true });
  const logFd = openSync(path.join(LOGS, `${name}.log`), 'a');
  const [cmd, ...args] = [...prefix, process.execPath, ...nodeArgs, '--import', 'tsx', path.join(REPO, 'bench', script)];
  const child = spawn(cmd, args, { cwd: REPO, stdio: ['ignore', logFd, logFd, 'ipc'], serialization: 'advanced', env: { ...process.env, NODE_OPTIONS: '' } });
  closeSync(logFd);
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
    return background(a, b, owners);
  }

  noisy(b: Background | null): boolean {
    if (!b) return false;
    if (this.place.pinned) return (b.foreign[this.place.relayCpu] ?? 0) > this.o.noisyShare || (b.foreign[this.place.loadCpu] ?? 0) > this.o.noisyShare;
    return b.foreignTotal > this.o.noisyShare;
  }

  /** Waits (bounded) until other processes leave the bench's cores nearly idle. */
  async quiet(): Promise<void> {
    if (!this.enabled) return;
    const started = Date.now();
    let said = false;
    for (;;) {
      const a = this.snap();
      await sleep(1000);
      const b = this.between(a, this.snap());
      if (!b || !this.noisy(b)) return;
      if (Date.now() - started > this.o.quietWaitMs) {
        log(`  machine still busy after ${this.o.quietWaitMs / 1000} s (other processes: ${b.foreign.map((f) => `${Math.round(100 * f)}%`).join(' / ')}); measuring anyway`);
        return;
      }
      if (!said) log(`  waiting for other processes to leave the cores (${b.foreign.map((f) => `${Math.round(100 * f)}%`).join(' / ')} busy)`);
      said = true;
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

interface StreamRun {
  stream: StreamResult;
  targetSamples?: { base: ProcSample; idle: ProcSample; w0: ProcSample; w1: ProcSample; openSessions: number };
  loadW0: ProcSample;
  loadW1: ProcSample;
  connect: { connected: number; failed: number; ms: number; firstError: string | null };
  background: Background | null;
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

class Bench {
  private targetCounter = 0;

  constructor(
    private readonly o: Options,
    private readonly load: Peer<LoadApi>,
    private readonly upstream: { base: string; ws: string },
    private readonly place: Placement,
    private readonly guard: Guard,
  ) {}

  async startTarget(kind: TargetKind, extraNodeArgs: string[] = []): Promise<StartedTarget> {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), `relay-bench-${kind}-`));
    const peer = spawnNode<TargetApi>(`${kind}-${++this.targetCounter}`, 'target.ts', this.place.relayPrefix, ['--expose-gc', ...extraNodeArgs]);
    this.guard.watch(peer.child.pid);
    const adminToken = randomBytes(24).toString('base64url');
    const { baseUrl } = await peer.call('start', { kind, upstreamBaseUrl: this.upstream.base, dataDir, adminToken }, 60_000);
    const headers: Record<string, string> = {};
    // The relay is measured as deployed: every session authenticates with an admin-created API key.
    if (kind === 'relay') headers.authorization = `Bearer ${await createApiKey(baseUrl, adminToken)}`;
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
    log(`latency: ${o.latencySamples} ping-pong frames per path, ${o.latencyRounds} interleaved rounds`);
    const relay = await this.startTarget('relay');
    const pipe = await this.startTarget('pipe');
    const paths: Record<PathKind, { url: string; headers: Record<string, string> }> = {
      direct: { url: this.upstream.ws, headers: {} },
      pipe: { url: pipe.url, headers: pipe.headers },
      relay: { url: relay.url, headers: relay.headers },
    };
    const order: PathKind[] = ['direct', 'pipe', 'relay'];
    const got: Record<PathKind, { c2u: Float64Array[]; u2c: Float64Array[] }> = { direct: { c2u: [], u2c: [] }, pipe: { c2u: [], u2c: [] }, relay: { c2u: [], u2c: [] } };
    const errors: string[] = [];
    let worst: Background | null = null;
    let discarded = 0;
    const perRound = Math.ceil(o.latencySamples / o.latencyRounds);
    try {
      for (let r = 0; r < o.latencyRounds; r++) {
        // Rotating the order spreads any drift (frequency, caches, GC age) over the three paths.
        for (let k = 0; k < order.length; k++) {
          const p = order[(r + k) % order.length];
          for (let attempt = 1; ; attempt++) {
            await this.guard.quiet();
            const a = this.guard.snap();
            const res = await this.load.call('latency', { ...paths[p], samples: perRound, warmup: 200, gapMs: o.latencyGapMs });
            const b = this.guard.between(a, this.guard.snap());
            if (this.guard.noisy(b) && attempt < o.attempts + 2) {
              discarded++;
              continue;
            }
            if (b && (!worst || Math.max(...b.foreign) > Math.max(...worst.foreign))) worst = b;
            got[p].c2u.push(res.c2u);
            got[p].u2c.push(res.u2c);
            errors.push(...res.errors.map((e) => `${p}: ${e}`));
            break;
          }
        }
      }
    } finally {
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
        'One session, one frame in flight: the client sends an append, the upstream answers it at once with a delta, ' +
        `then ${o.latencyGapMs} ms of quiet; both one-way times are read on the load process's single clock; added = path − direct (client straight to the upstream, no hop)`,
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

  private async stream(sessions: number, url: string, headers: Record<string, string>, target?: StartedTarget): Promise<StreamRun> {
    const o = this.o;
    const base = target ? await target.peer.call('sample', { gc: true }) : undefined;
    const connect = await this.load.call('connect', { url, headers, sessions, concurrency: o.connectConcurrency, timeoutMs: 30_000 });
    if (connect.failed > 0) log(`  ${connect.failed} of ${sessions} sessions failed to connect: ${connect.firstError}`);
    await sleep(1000);
    const idle = target ? await target.peer.call('sample', { gc: true }) : undefined;
    const openSessions = target ? (await target.peer.call('openSessions', {})).sessions : 0;
    await this.load.call('streamStart', { periodMs: o.periodMs });
    await sleep(o.warmupMs);
    const c0 = this.guard.snap();
    const [loadW0, w0] = await Promise.all([this.load.call('sample', {}), target?.peer.call('sample', { gc: false })]);
    await sleep(o.windowMs);
    const [loadW1, w1] = await Promise.all([this.load.call('sample', {}), target?.peer.call('sample', { gc: false })]);
    const bg = this.guard.between(c0, this.guard.snap());
    const stream = await this.load.call('streamStop', { windowStartUs: loadW0.nowUs, windowEndUs: loadW1.nowUs, graceMs: o.graceMs, delayThresholdMs: o.delayThresholdMs });
    await this.load.call('disconnect', {});
    return { stream, loadW0, loadW1, connect, background: bg, targetSamples: target && base && idle && w0 && w1 ? { base, idle, w0, w1, openSessions } : undefined };
  }

  private row(sessions: number, p: PathKind, run: StreamRun, attempt: number): ThroughputRow {
    const o = this.o;
    const s = run.stream;
    const windowS = s.windowMs / 1000;
    const c2u = summariseDirection(s.c2u, sessions, windowS, o.periodMs);
    const u2c = summariseDirection(s.u2c, sessions, windowS, o.periodMs);
    const t = run.targetSamples;
    const n = Math.max(1, run.connect.connected);
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
      loadCpuCoreShare: cpuUs(run.loadW0, run.loadW1) / (run.loadW1.hrUs - run.loadW0.hrUs),
      target: t && {
        cpuCoreShare: cpuUs(t.w0, t.w1) / (t.w1.hrUs - t.w0.hrUs),
        cpuUsPerSessionSecond: cpuUs(t.w0, t.w1) / (n * ((t.w1.hrUs - t.w0.hrUs) / 1e6)),
        baseRss: t.base.rss,
        idleRssPerSession: (t.idle.rss - t.base.rss) / n,
        idleHeapPerSession: (t.idle.heapUsed - t.base.heapUsed) / n,
        idleExternalPerSession: (t.idle.external - t.base.external) / n,
        activeRssPerSession: (t.w1.rss - t.base.rss) / n,
        activeHeapPerSession: (t.w1.heapUsed - t.base.heapUsed) / n,
        openSessionsSeen: t.openSessions,
      },
      background: run.background,
      noisy: this.guard.noisy(run.background),
      attempt,
    };
  }

  /** One scenario on a fresh process, re-run while other processes make it noisy; the quietest run is kept. */
  async scenario(sessions: number, p: PathKind, extraNodeArgs: string[] = []): Promise<{ row: ThroughputRow; run: StreamRun }> {
    let best: { row: ThroughputRow; run: StreamRun; foreign: number } | null = null;
    for (let attempt = 1; attempt <= this.o.attempts; attempt++) {
      await this.guard.quiet();
      const t = p === 'direct' ? undefined : await this.startTarget(p, extraNodeArgs);
      let run: StreamRun;
      try {
        run = await this.stream(sessions, t?.url ?? this.upstream.ws, t?.headers ?? {}, t);
      } finally {
        if (t) await this.stopTarget(t);
      }
      const row = this.row(sessions, p, run, attempt);
      const foreign = run.background ? Math.max(...run.background.foreign, 0) : 0;
      if (!best || foreign < best.foreign) best = { row, run, foreign };
      if (!row.noisy) break;
      if (attempt < this.o.attempts) log(`  other processes used ${Math.round(100 * foreign)}% of a bench core: running it again`);
    }
    const b = best as { row: ThroughputRow; run: StreamRun };
    return { row: b.row, run: b.run };
  }

  async throughput(): Promise<ThroughputRow[]> {
    const rows: ThroughputRow[] = [];
    for (const n of this.o.sessions) {
      for (const p of (this.o.directThroughput ? ['direct', 'pipe', 'relay'] : ['pipe', 'relay']) as PathKind[]) {
        log(`throughput: ${n} sessions via ${p} (warm-up ${this.o.warmupMs / 1000} s, window ${this.o.windowMs / 1000} s)`);
        const { row } = await this.scenario(n, p);
        log(`  ${row.framesPerS.toFixed(0)} frames/s, ${row.dropped} dropped, ${row.delayed} delayed${row.target ? `, CPU ${(100 * row.target.cpuCoreShare).toFixed(1)}% of a core` : ''}, load gen ${(100 * row.loadCpuCoreShare).toFixed(1)}%`);
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
          await this.load.call('connect', { url: t.url, headers: t.headers, sessions: 1, concurrency: 1, timeoutMs: 30_000 });
          await this.load.call('disconnect', {});
          await sleep(500);
          const before = (await t.peer.call('heapSnapshot', { file: path.join(dir, `${kind}-0.heapsnapshot`) }, 300_000)).file;
          const c = await this.load.call('connect', { url: t.url, headers: t.headers, sessions: n, concurrency: this.o.connectConcurrency, timeoutMs: 30_000 });
          await sleep(1000);
          const after = (await t.peer.call('heapSnapshot', { file: path.join(dir, `${kind}-${n}.heapsnapshot`) }, 300_000)).file;
          await this.load.call('disconnect', {});
          const b = groupSnapshot(before);
          const a = groupSnapshot(after);
          let total = 0;
          for (const g of a.values()) total += g.bytes;
          for (const g of b.values()) total -= g.bytes;
          const k = Math.max(1, c.connected);
          out.push({ kind, sessions: c.connected, heapPerSession: total / k, top: diffPerSession(b, a, k, 20) });
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
    const n = Math.max(...this.o.sessions);
    mkdirSync(PROFILES, { recursive: true });
    const out: ProfileReport[] = [];
    for (const kind of ['relay', 'pipe'] as const) {
      log(`profile: the ${kind} under node --cpu-prof with ${n} streaming sessions`);
      const name = `${kind}-${n}.cpuprofile`;
      const file = path.join(PROFILES, name);
      rmSync(file, { force: true });
      const { run } = await this.scenario(n, kind, ['--cpu-prof', `--cpu-prof-dir=${PROFILES}`, `--cpu-prof-name=${name}`]);
      for (let i = 0; i < 50 && !existsSync(file); i++) await sleep(100);
      if (!existsSync(file) || !run.targetSamples) {
        log(`  no profile written at ${file}`);
        continue;
      }
      const { w0, w1 } = run.targetSamples;
      // Cropped to the steady-state window: start-up and the TS transform are not the hot path.
      out.push({ kind, sessions: n, file: path.relative(REPO, file), summary: summariseProfile(readProfile(file), { fromUs: w0.hrUs, toUs: w1.hrUs, top: 25 }), background: run.background });
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

  const load = spawnNode<LoadApi>('loadgen', 'loadgen.ts', place.loadPrefix, []);
  process.on('exit', () => load.child.kill('SIGKILL'));
  try {
    const init = await load.call('init', {}, 60_000);
    const guard = new Guard(o, place, load.child.pid ?? 0);
    const bench = new Bench(o, load, { base: init.upstreamBaseUrl, ws: init.upstreamWsUrl }, place, guard);
    const latency = await bench.latency();
    const throughput = await bench.throughput();
    const heap = o.heap ? await bench.heap() : [];
    const profiles = o.profile ? await bench.profiles() : [];
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
