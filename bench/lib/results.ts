import type { UpstreamMasking } from '../../src/config/config';
/** The shape of bench/results/latest.json. */
import type { Background } from './cpu-monitor';
import type { ProfileSummary } from './cpuprofile';
import type { HeapGroup } from './heapsnapshot';
import type { MainPath, PathKind, TargetKind } from './protocol';
import type { Percentiles } from './stats';

export interface Options {
  quick: boolean;
  sessions: number[];
  /** Streaming sessions while the CPU profiles are taken: a steady state, below saturation. */
  profileSessions: number;
  latencySamples: number;
  latencyRounds: number;
  latencyGapMs: number;
  /** Throughput: each path streams in this many turns, alternating with the others. */
  rounds: number;
  warmupMs: number;
  windowMs: number;
  /** After the last send: arrivals must pause this long before unarrived frames count as dropped… */
  graceMs: number;
  /** …but no longer than this. */
  maxGraceMs: number;
  periodMs: number;
  delayThresholdMs: number;
  directThroughput: boolean;
  /** Also stream through the relay with its layers peeled off (relay-core, session-ws). */
  diagnose: boolean;
  /** Also stream through the relay translating every session (relay-translated). */
  translated: boolean;
  profile: boolean;
  heap: boolean;
  connectConcurrency: number;
  /** Runs of a scenario when other processes load the machine; the quietest is kept. */
  attempts: number;
  /** Longest wait for the machine to go quiet before a scenario. */
  quietWaitMs: number;
  /** Share of a window a bench event loop may wait for its core before the measurement is called noisy. */
  noisyShare: number;
  /** Other processes' share of a bench core below which a scenario may start. */
  quietShare: number;
  /** Which parts to run: latency, throughput, heap, profile. */
  phases: string[];
  /** NODE_PATH for the relay/pipe process: lets an experiment add e.g. bufferutil without touching the repo. */
  targetNodePath: string | null;
  /** NODE_PATH for the load process. */
  loadNodePath: string | null;
  /** Node flags of the relay/pipe process: `npm start`'s unless an experiment replaces them. */
  targetNodeArgs: string[];
  /** Node flags of the load process (the same by default: it must not be the bottleneck). */
  loadNodeArgs: string[];
  /** UPSTREAM_MASKING of the relay, mirrored by the bare pipe. */
  upstreamMasking: UpstreamMasking;
}

export type Triple = Pick<Percentiles, 'p50' | 'p99' | 'p999'>;

export interface LatencyReport {
  method: string;
  samplesPerPath: number;
  frameBytes: { append: number; delta: number };
  absolute: Record<MainPath, { c2u: Percentiles; u2c: Percentiles }>;
  /** Path minus direct, per percentile. */
  added: Record<Exclude<MainPath, 'direct'>, { c2u: Triple; u2c: Triple }>;
  /** The relay's added latency over the pipe's. */
  ratio: { c2u: Triple; u2c: Triple };
  /** Other processes' load while the kept samples were taken (worst call). */
  background: Background | null;
  discardedNoisyCalls: number;
  errors: string[];
}

export interface DirectionSummary {
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

export interface TargetFigures {
  cpuCoreShare: number;
  cpuUsPerSessionSecond: number;
  baseRss: number;
  idleRssPerSession: number;
  idleHeapPerSession: number;
  idleExternalPerSession: number;
  activeRssPerSession: number;
  activeHeapPerSession: number;
  openSessionsSeen: number;
}

export interface ThroughputRow {
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
  /** Some window's wait for stragglers was cut while frames still arrived: `dropped` counts queued frames too. */
  cutOff: boolean;
  /** The process under test; absent for direct. */
  target?: TargetFigures;
  loadCpuCoreShare: number;
  background: Background | null;
  /** Each streaming turn on its own, to show the spread behind the totals. */
  turns: { cpuCoreShare: number; framesPerS: number; otherProcs: number }[];
  noisy: boolean;
  attempt: number;
}

export interface HeapBreakdown {
  kind: TargetKind;
  sessions: number;
  heapPerSession: number;
  /** Growth per session by the objects' own constructor. */
  top: HeapGroup[];
  /** Growth per session charged to the nearest class instance that keeps it. */
  byOwner: HeapGroup[];
}

export interface ProfileReport {
  kind: TargetKind;
  sessions: number;
  file: string;
  summary: ProfileSummary;
  background: Background | null;
}

export interface Verdict {
  target: string;
  measured: string;
  met: boolean | null;
}

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  os: string;
  ws: string;
  fastify: string;
  fdLimit: string;
}

export interface BenchResults {
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  placement: string;
  options: Options;
  latency: LatencyReport | null;
  throughput: ThroughputRow[];
  heap: HeapBreakdown[];
  profiles: ProfileReport[];
  verdicts: Verdict[];
}
