/** The shape of bench/results/latest.json. */
import type { Background } from './cpu-monitor';
import type { ProfileSummary } from './cpuprofile';
import type { HeapGroup } from './heapsnapshot';
import type { PathKind, TargetKind } from './protocol';
import type { Percentiles } from './stats';

export interface Options {
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
  /** Runs of a scenario when other processes load the machine; the quietest is kept. */
  attempts: number;
  /** Longest wait for the machine to go quiet before a scenario. */
  quietWaitMs: number;
  /** Other processes' share of a bench core above which a measurement is called noisy. */
  noisyShare: number;
}

export type Triple = Pick<Percentiles, 'p50' | 'p99' | 'p999'>;

export interface LatencyReport {
  method: string;
  samplesPerPath: number;
  frameBytes: { append: number; delta: number };
  absolute: Record<PathKind, { c2u: Percentiles; u2c: Percentiles }>;
  /** Path minus direct, per percentile. */
  added: Record<TargetKind, { c2u: Triple; u2c: Triple }>;
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
  /** The process under test; absent for direct. */
  target?: TargetFigures;
  loadCpuCoreShare: number;
  background: Background | null;
  noisy: boolean;
  attempt: number;
}

export interface HeapBreakdown {
  kind: TargetKind;
  sessions: number;
  heapPerSession: number;
  top: HeapGroup[];
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
