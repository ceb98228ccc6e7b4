/**
 * How busy each core was with work that is not the bench's own: on a shared machine another
 * process on the relay's core shows up as "relay latency". Linux only (/proc); elsewhere it
 * reports nothing and the bench runs unguarded.
 */
import { readFileSync } from 'node:fs';

export interface CpuSnapshot {
  atMs: number;
  /** Busy jiffies per core (everything but idle and iowait). */
  busy: number[];
  /** Jiffies of each watched process (all its threads). */
  pids: Map<number, number>;
  /** Nanoseconds each watched process's main thread (its event loop) spent runnable but not running. */
  waitNs: Map<number, number>;
}

export interface Background {
  seconds: number;
  /**
   * Share of the window the event loop of the process under test (then of the load process)
   * was ready to run but had no core: the direct measure of interference, unlike core usage,
   * which also counts time the bench did not want.
   */
  targetWait: number;
  loadWait: number;
  /** Per core: share of the core used by processes other than the watched ones on it. */
  foreign: number[];
  /** All cores: cores' worth of time used by processes other than the watched ones. */
  foreignTotal: number;
}

const HZ = 100; // USER_HZ: 100 on every Linux the bench targets (getconf CLK_TCK)

function readCores(): number[] {
  try {
    const lines = readFileSync('/proc/stat', 'utf8').split('\n');
    const out: number[] = [];
    for (const line of lines) {
      const m = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (!m) continue;
      const f = m[2].trim().split(/\s+/).map(Number);
      // user nice system idle iowait irq softirq steal: steal counts as taken from us.
      out[Number(m[1])] = f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0);
    }
    return out;
  } catch {
    return [];
  }
}

function readPid(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

function readWaitNs(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[1]);
  } catch {
    return 0;
  }
}

export function snapshot(pids: readonly number[]): CpuSnapshot {
  const m = new Map<number, number>();
  const w = new Map<number, number>();
  for (const p of pids) {
    m.set(p, readPid(p));
    w.set(p, readWaitNs(p));
  }
  return { atMs: performance.now(), busy: readCores(), pids: m, waitNs: w };
}

/**
 * Foreign load per core between two snapshots. `owners[core]` lists the watched pids pinned
 * to that core; their time is subtracted from the core's busy time.
 */
export function background(a: CpuSnapshot, b: CpuSnapshot, owners: number[][], roles: { target: readonly number[]; load: readonly number[] }): Background {
  const seconds = (b.atMs - a.atMs) / 1000;
  const waited = (pids: readonly number[]): number => {
    let ns = 0;
    for (const p of pids) ns += (b.waitNs.get(p) ?? 0) - (a.waitNs.get(p) ?? b.waitNs.get(p) ?? 0);
    return seconds > 0 ? Math.max(0, ns / 1e9 / seconds) : 0;
  };
  const share = (jiffies: number): number => (seconds > 0 ? Math.max(0, jiffies / HZ / seconds) : 0);
  const foreign = b.busy.map((busy, core) => {
    let ours = 0;
    for (const pid of owners[core] ?? []) ours += (b.pids.get(pid) ?? 0) - (a.pids.get(pid) ?? 0);
    return share(busy - (a.busy[core] ?? busy) - ours);
  });
  let busyAll = 0;
  b.busy.forEach((busy, core) => (busyAll += busy - (a.busy[core] ?? busy)));
  let oursAll = 0;
  for (const [pid, j] of b.pids) oursAll += j - (a.pids.get(pid) ?? j);
  return { seconds, targetWait: waited(roles.target), loadWait: waited(roles.load), foreign, foreignTotal: share(busyAll - oursAll) };
}

export function isLinuxProc(): boolean {
  return readCores().length > 0;
}
