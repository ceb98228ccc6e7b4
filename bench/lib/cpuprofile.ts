/**
 * Self time by function from a V8 `.cpuprofile` (what `node --cpu-prof` writes), optionally
 * cropped to a window so start-up and the TS transform do not drown the steady state.
 *
 *   npx tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]
 */
import { readFileSync } from 'node:fs';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export type Category = 'relay (src/relay)' | 'session plan (src/session)' | 'metering (src/metering)' | 'other src' | 'ws' | 'fastify/pino' | 'node internals' | 'bench' | 'gc' | 'V8/native' | 'other';

export interface FunctionTime {
  name: string;
  where: string;
  category: Category;
  selfMs: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  windowMs: number;
  /** Longest time one sample stood for: a profiler that stopped sampling shows as one huge sample. */
  maxSampleGapMs: number;
  busyMs: number;
  idleMs: number;
  top: FunctionTime[];
  byCategory: { category: Category; selfMs: number; share: number }[];
}

function categorise(cf: CallFrame): Category {
  const u = cf.url;
  if (cf.functionName === '(garbage collector)') return 'gc';
  if (u.includes('/src/relay/')) return 'relay (src/relay)';
  if (u.includes('/src/session/')) return 'session plan (src/session)';
  if (u.includes('/src/metering/')) return 'metering (src/metering)';
  if (u.includes('/src/')) return 'other src';
  if (u.includes('/node_modules/ws/')) return 'ws';
  if (/\/node_modules\/(fastify|@fastify|pino|light-my-request|avvio|find-my-way)/.test(u)) return 'fastify/pino';
  if (u.startsWith('node:')) return 'node internals';
  if (u.includes('/bench/')) return 'bench';
  if (u === '') return 'V8/native';
  return 'other';
}

function shortUrl(url: string): string {
  const i = url.lastIndexOf('/node_modules/');
  if (i >= 0) return url.slice(i + '/node_modules/'.length);
  const s = url.indexOf('/src/');
  if (s >= 0) return url.slice(s + 1);
  return url.replace(/^file:\/\//, '');
}

/** Summarises self time inside [fromUs, toUs] (profile clock = process.hrtime µs), or the whole profile. */
export function summariseProfile(profile: CpuProfile, opts: { fromUs?: number; toUs?: number; top?: number } = {}): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  const from = opts.fromUs ?? -Infinity;
  const to = opts.toUs ?? Infinity;
  let t = profile.startTime;
  let windowUs = 0;
  let maxGapUs = 0;
  // A sample stands for the time until the next one, as DevTools counts it.
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    const next = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0;
    if (t < from || t > to) continue;
    windowUs += next;
    if (next > maxGapUs) maxGapUs = next;
    const id = profile.samples[i];
    self.set(id, (self.get(id) ?? 0) + next);
  }
  let idleUs = 0;
  const byKey = new Map<string, { name: string; where: string; category: Category; us: number }>();
  for (const [id, us] of self) {
    const cf = byId.get(id)?.callFrame;
    if (!cf) continue;
    if (cf.functionName === '(idle)') {
      idleUs += us;
      continue;
    }
    const name = cf.functionName || '(anonymous)';
    const where = cf.url ? `${shortUrl(cf.url)}:${cf.lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const e = byKey.get(key) ?? { name, where, category: categorise(cf), us: 0 };
    e.us += us;
    byKey.set(key, e);
  }
  const busyUs = windowUs - idleUs;
  const rows = [...byKey.values()].sort((a, b) => b.us - a.us);
  const cats = new Map<Category, number>();
  for (const r of rows) cats.set(r.category, (cats.get(r.category) ?? 0) + r.us);
  return {
    windowMs: windowUs / 1000,
    maxSampleGapMs: maxGapUs / 1000,
    busyMs: busyUs / 1000,
    idleMs: idleUs / 1000,
    top: rows.slice(0, opts.top ?? 20).map((r) => ({ name: r.name, where: r.where, category: r.category, selfMs: r.us / 1000, share: busyUs > 0 ? r.us / busyUs : 0 })),
    byCategory: [...cats.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([category, us]) => ({ category, selfMs: us / 1000, share: busyUs > 0 ? us / busyUs : 0 })),
  };
}

export function readProfile(file: string): CpuProfile {
  return JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
}

export function formatProfile(s: ProfileSummary, title: string): string {
  const lines = [
    ...(s.maxSampleGapMs > 100 ? [`**Unreliable:** one sample stands for ${s.maxSampleGapMs.toFixed(0)} ms (the profiler stopped sampling).`, ''] : []),
    `${title}: ${s.windowMs.toFixed(0)} ms sampled, busy ${s.busyMs.toFixed(0)} ms (${((100 * s.busyMs) / Math.max(1, s.windowMs)).toFixed(1)}% of one core)`,
    '',
    '| self ms | % busy | function | where | category |',
    '|---:|---:|---|---|---|',
    ...s.top.map((f) => `| ${f.selfMs.toFixed(1)} | ${(100 * f.share).toFixed(1)} | ${f.name} | ${f.where} | ${f.category} |`),
    '',
    '| category | self ms | % busy |',
    '|---|---:|---:|',
    ...s.byCategory.map((c) => `| ${c.category} | ${c.selfMs.toFixed(1)} | ${(100 * c.share).toFixed(1)} |`),
  ];
  return lines.join('\n');
}

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: tsx bench/lib/cpuprofile.ts <file.cpuprofile> [top]');
    process.exit(2);
  }
  console.log(formatProfile(summariseProfile(readProfile(file), { top: Number(process.argv[3] ?? 25) }), file));
}
