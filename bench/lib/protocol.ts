import type { UpstreamMasking } from '../../src/config/config';
/** What the orchestrator asks of the relay-side process and of the load process. */

/** relay-core and session-ws are diagnostics: the relay with its layers peeled off. */
/**
 * `--translated`: the full relay translating every session. relay-translated: beta clients on the
 * GA-only upstream (OpenAI's case; deltas renamed in place). relay-translated-up: GA clients on a
 * beta-only upstream (CometAPI's case; each delta's type grows, one copy).
 */
export type TargetKind = 'relay' | 'pipe' | 'relay-core' | 'relay-core-metered' | 'session-ws' | 'relay-translated' | 'relay-translated-up';
export type PathKind = 'direct' | TargetKind;
/** The paths the latency comparison and the targets are about. */
export type MainPath = 'direct' | 'pipe' | 'relay';

/** One process's counters at an instant. */
export interface ProcSample {
  /** process.hrtime in µs: the clock V8's CPU profile uses, to crop it to a window. */
  hrUs: number;
  /** performance.now() in µs. */
  nowUs: number;
  cpuUserUs: number;
  cpuSystemUs: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

type NoArgs = Record<string, never>;

export type TargetApi = {
  start: { args: { kind: TargetKind; upstreamBaseUrl: string; dataDir: string; adminToken: string; upstreamMasking: UpstreamMasking }; result: { baseUrl: string } };
  sample: { args: { gc: boolean }; result: ProcSample };
  heapSnapshot: { args: { file: string }; result: { file: string } };
  openSessions: { args: NoArgs; result: { sessions: number } };
  stop: { args: NoArgs; result: { stopped: true } };
};

export interface LatencySamples {
  /** One-way client → upstream, µs. */
  c2u: Float64Array;
  /** One-way upstream → client, µs. */
  u2c: Float64Array;
}

export interface LatencyResult {
  /** In the order of the paths asked for. */
  perPath: LatencySamples[];
  errors: string[];
}

export interface ConnectResult {
  connected: number;
  failed: number;
  ms: number;
  firstError: string | null;
}

export interface DirectionResult {
  /** Frames due inside the window, by their schedule. */
  sentInWindow: number;
  /** Of those, how many arrived (at any time). */
  receivedInWindow: number;
  /** Frames that arrived inside the window, whenever due: the delivered rate. */
  deliveredInWindow: number;
  /** Frames sent at any time during the run that never arrived (arrivals had stopped for the grace period). */
  dropped: number;
  /** Frames that arrived out of order within their session. */
  reordered: number;
  /** Frames (due inside the window) that arrived later than the threshold after their schedule. */
  delayed: number;
  /** Bytes of the frames delivered inside the window. */
  bytesInWindow: number;
  /** One-way latency (arrival − actual send), µs, frames due inside the window. */
  latencyUs: Float64Array;
  /** Lateness against the schedule (arrival − due time), µs. */
  latenessUs: Float64Array;
  /** How late the load generator itself was in sending (send − due time), µs. */
  sendLagUs: Float64Array;
}

export interface StreamResult {
  windowMs: number;
  c2u: DirectionResult;
  u2c: DirectionResult;
  /** Frames from the relay that were not bench frames (e.g. error events). */
  foreignFrames: number;
  foreignSample: string[];
  closedEarly: number;
  /** Frames were still arriving when the wait for stragglers hit its limit: the missing ones were queued, not known lost. */
  cutOff: boolean;
  /** How long the wait for stragglers took. */
  waitedMs: number;
}

export type LoadApi = {
  init: { args: NoArgs; result: { upstreamBaseUrl: string; upstreamWsUrl: string } };
  latency: { args: { paths: { url: string; headers: Record<string, string> }[]; samples: number; warmup: number; gapMs: number }; result: LatencyResult };
  /** Adds sessions to a group (a path); sessions already open stay. */
  connect: { args: { group: string; url: string; headers: Record<string, string>; sessions: number; concurrency: number; timeoutMs: number }; result: ConnectResult };
  /** Streams audio on one group's sessions; the others stay open and idle. */
  streamStart: { args: { periodMs: number; group: string }; result: { startedUs: number } };
  sample: { args: NoArgs; result: ProcSample };
  streamStop: { args: { windowStartUs: number; windowEndUs: number; graceMs: number; maxGraceMs: number; delayThresholdMs: number }; result: StreamResult };
  /** Closes one group's sessions, or every session. */
  disconnect: { args: { group?: string }; result: { closed: number } };
};

export function sampleProcess(): ProcSample {
  const cpu = process.cpuUsage();
  const mem = process.memoryUsage();
  return {
    hrUs: Number(process.hrtime.bigint() / 1000n),
    nowUs: performance.now() * 1000,
    cpuUserUs: cpu.user,
    cpuSystemUs: cpu.system,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    heapTotal: mem.heapTotal,
    external: mem.external,
    arrayBuffers: mem.arrayBuffers,
  };
}
