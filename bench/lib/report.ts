/** The summary as markdown: printed to the terminal and written to bench/results/latest.md. */
import type { Background } from './cpu-monitor';
import { formatProfile } from './cpuprofile';
import { frameBytes } from './frames';
import type { MainPath, PathKind } from './protocol';
import type { BenchResults, LatencyReport, Options, ThroughputRow, Verdict } from './results';
import { ratio } from './stats';

export function table(head: string[], rows: (string | number)[][], align: ('l' | 'r')[] = []): string {
  const sep = head.map((_, i) => (align[i] === 'l' ? '---' : '---:'));
  return [head, sep, ...rows.map((r) => r.map(String))].map((r) => `| ${r.join(' | ')} |`).join('\n');
}

const us = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '—');
const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '—');
const kib = (v: number): string => (Number.isFinite(v) ? (v / 1024).toFixed(1) : '—');
const pct = (v: number): string => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : '—');
const PATH_NAMES: Record<PathKind, string> = {
  direct: 'direct',
  pipe: 'bare pipe',
  relay: 'relay',
  'relay-core': 'relay core only (diag.)',
  'relay-core-metered': 'relay core + metering hooks (diag.)',
  'session-ws': 'RelaySession on bare ws (diag.)',
  'relay-translated': 'relay, beta clients → GA upstream (translated)',
  'relay-translated-up': 'relay, GA clients → beta upstream (translated)',
};
const pathName = (p: PathKind): string => PATH_NAMES[p];
const capitalise = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/** Other processes' share of core 0 (relay) / core 1 (load generator). */
function bg(b: Background | null): string {
  if (!b) return '—';
  return b.foreign.length >= 2 ? b.foreign.map((f) => `${Math.round(100 * f)}%`).join(' / ') : `${Math.round(100 * b.foreignTotal)}%`;
}

/** What one core carries at the cost measured where the relay and the pipe kept up. */
function capacity(rows: ThroughputRow[]): string {
  const est = (p: PathKind): number => Math.max(0, ...rows.filter((t) => t.path === p && keptUp(t) && t.sessions >= 100).map((t) => t.sessions / (t.target as NonNullable<ThroughputRow['target']>).cpuCoreShare));
  const relay = est('relay');
  const pipe = est('pipe');
  return relay > 0 ? `; at the cost measured below saturation one core carries ≈ ${relay.toFixed(0)} sessions (bare pipe ≈ ${pipe > 0 ? pipe.toFixed(0) : '?'})` : '';
}

export function verdicts(lat: LatencyReport | null, rows: ThroughputRow[], o: Options): Verdict[] {
  const out: Verdict[] = [];
  if (lat) {
    const worstP50 = Math.max(lat.ratio.c2u.p50, lat.ratio.u2c.p50);
    const worstP99 = Math.max(lat.ratio.c2u.p99, lat.ratio.u2c.p99);
    out.push({
      target: 'added latency p50 ≤ 1.10× the bare pipe',
      measured: `c→u ${x(lat.ratio.c2u.p50)} (${us(lat.added.relay.c2u.p50)} vs ${us(lat.added.pipe.c2u.p50)} µs), u→c ${x(lat.ratio.u2c.p50)} (${us(lat.added.relay.u2c.p50)} vs ${us(lat.added.pipe.u2c.p50)} µs)`,
      met: Number.isFinite(worstP50) ? worstP50 <= 1.1 : null,
    });
    out.push({
      target: 'added latency p99 ≤ 1.25× the bare pipe',
      measured: `c→u ${x(lat.ratio.c2u.p99)} (${us(lat.added.relay.c2u.p99)} vs ${us(lat.added.pipe.c2u.p99)} µs), u→c ${x(lat.ratio.u2c.p99)} (${us(lat.added.relay.u2c.p99)} vs ${us(lat.added.pipe.u2c.p99)} µs)`,
      met: Number.isFinite(worstP99) ? worstP99 <= 1.25 : null,
    });
  }
  const max = Math.max(...o.sessions);
  const big = rows.find((r) => r.path === 'relay' && r.sessions === max);
  if (big) {
    out.push({
      target: `${max} concurrent audio sessions on one core, no dropped frames`,
      measured: `${big.connected}/${max} connected, ${big.framesPerS.toFixed(0)} of ${(big.c2u.expectedFramesPerS + big.u2c.expectedFramesPerS).toFixed(0)} frames/s delivered, ${big.dropped}${big.cutOff ? ' (still queued at cut-off)' : ''} dropped, ${big.delayed} delayed > ${o.delayThresholdMs} ms, relay at ${pct(big.target?.cpuCoreShare ?? NaN)} of its core${capacity(rows)}`,
      // Real-time audio that keeps up but arrives seconds late is as good as dropped: delivery rate and delay count too.
      met: big.connected === max && big.dropped === 0 && !big.cutOff && big.closedEarly === 0 && keptPace(big),
    });
    const idle = big.target?.idleRssPerSession ?? NaN;
    out.push({ target: 'RSS per idle session < 100 KiB', measured: `${kib(idle)} KiB (${max} sessions)`, met: Number.isFinite(idle) ? idle < 100 * 1024 : null });
  }
  return out;
}

function latencySection(l: LatencyReport): string[] {
  const parts: string[] = ['## Added latency per frame (µs)', ''];
  parts.push(
    `${l.method}. ${l.samplesPerPath} samples per path and direction; other processes' share of core 0 / core 1 in the worst kept round: ${bg(l.background)}` +
      (l.discardedNoisyCalls ? `; ${l.discardedNoisyCalls} calls discarded as noisy and re-run` : '') +
      '.',
    '',
  );
  const row = (label: string, dir: 'c2u' | 'u2c', p: MainPath): (string | number)[] => {
    const a = l.absolute[p][dir];
    const add = p === 'direct' ? null : l.added[p][dir];
    return [label, p === 'direct' ? 'direct (no hop)' : p === 'pipe' ? 'bare ws pipe' : 'relay', us(a.p50), us(a.p99), us(a.p999), add ? us(add.p50) : '—', add ? us(add.p99) : '—', add ? us(add.p999) : '—'];
  };
  const ratioRow = (label: string, dir: 'c2u' | 'u2c'): (string | number)[] => [
    label,
    '**relay ÷ pipe**',
    x(ratio(l.absolute.relay[dir].p50, l.absolute.pipe[dir].p50)),
    x(ratio(l.absolute.relay[dir].p99, l.absolute.pipe[dir].p99)),
    x(ratio(l.absolute.relay[dir].p999, l.absolute.pipe[dir].p999)),
    `**${x(l.ratio[dir].p50)}**`,
    `**${x(l.ratio[dir].p99)}**`,
    x(l.ratio[dir].p999),
  ];
  parts.push(
    table(
      ['direction', 'path', 'p50', 'p99', 'p99.9', 'added p50', 'added p99', 'added p99.9'],
      [
        row('client→upstream', 'c2u', 'direct'),
        row('client→upstream', 'c2u', 'pipe'),
        row('client→upstream', 'c2u', 'relay'),
        ratioRow('client→upstream', 'c2u'),
        row('upstream→client', 'u2c', 'direct'),
        row('upstream→client', 'u2c', 'pipe'),
        row('upstream→client', 'u2c', 'relay'),
        ratioRow('upstream→client', 'u2c'),
      ],
      ['l', 'l'],
    ),
  );
  if (l.errors.length) parts.push('', `Errors: ${l.errors.slice(0, 5).join('; ')}`);
  parts.push('');
  return parts;
}

/** Delivered at the offered rate, with at most 1% of frames later than the threshold. */
function keptPace(t: ThroughputRow): boolean {
  const expected = t.c2u.expectedFramesPerS + t.u2c.expectedFramesPerS;
  return t.framesPerS >= 0.99 * expected && t.delayed <= 0.01 * (t.c2u.receivedInWindow + t.u2c.receivedInWindow);
}

/** The process under test kept up: a per-session cost measured there extrapolates. */
function keptUp(t: ThroughputRow): boolean {
  const expected = t.c2u.expectedFramesPerS + t.u2c.expectedFramesPerS;
  return t.target !== undefined && t.target.cpuCoreShare < 0.9 && t.dropped === 0 && t.framesPerS >= 0.99 * expected;
}

function throughputSection(rows: ThroughputRow[], o: Options): string[] {
  const parts: string[] = ['## Real-time audio throughput', ''];
  parts.push(
    `Per session the client sends one 100 ms append every ${o.periodMs} ms and the upstream one 100 ms delta every ${o.periodMs} ms; sessions are evenly phased. ` +
      `All paths' sessions are open at once; the paths stream in turns (${o.rounds} turn(s) each of ${(o.windowMs / o.rounds / 1000).toFixed(1)} s measured after ${o.warmupMs / 1000} s of warm-up), so background load falls on all alike. ` +
      '**frames/s** and **MB/s** count frames that arrived inside the window, both directions together. ' +
      `**dropped** = sent and never received (counted once arrivals had stopped for ${o.graceMs / 1000} s); **delayed** = due inside the window and arrived more than ${o.delayThresholdMs} ms after its scheduled time. ` +
      'Latency = one-way, arrival − send, of the frames due inside the window. CPU = process.cpuUsage of the relay (or pipe) process over the window; per session-second = CPU time ÷ (sessions × seconds); ' +
      '**sessions / core** = sessions ÷ CPU share, the load one core would carry at this cost (shown only where the process kept up: everything delivered, CPU < 90%). ' +
      '**send lag** = how late the load generator itself sent (its own stalls show up in every latency figure). ' +
      `"other procs" = CPU that processes outside the bench used on core 0 (relay) / core 1 (load generator) during the window (the bench runs at higher priority, so this is mostly time it left idle); ⚠ marks a window above ${Math.round(100 * o.noisyShare)}%.`,
    '',
  );
  parts.push(
    table(
      ['sessions', 'path', 'frames/s (of expected)', 'MB/s', 'dropped', 'delayed', 'c→u p50 / p99 / p99.9 µs', 'u→c p50 / p99 / p99.9 µs', 'CPU % of core', 'CPU µs / session-s', 'sessions / core', 'load-gen CPU / send lag p99', 'other procs'],
      rows.map((t) => [
        t.sessions,
        pathName(t.path),
        `${t.framesPerS.toFixed(0)} (${pct(t.framesPerS / (t.c2u.expectedFramesPerS + t.u2c.expectedFramesPerS))})`,
        t.mbPerS.toFixed(1),
        t.cutOff ? `${t.dropped}*` : t.dropped,
        t.delayed,
        `${us(t.c2u.latencyUs.p50)} / ${us(t.c2u.latencyUs.p99)} / ${us(t.c2u.latencyUs.p999)}`,
        `${us(t.u2c.latencyUs.p50)} / ${us(t.u2c.latencyUs.p99)} / ${us(t.u2c.latencyUs.p999)}`,
        t.target ? pct(t.target.cpuCoreShare) : '—',
        t.target ? t.target.cpuUsPerSessionSecond.toFixed(0) : '—',
        t.target ? (keptUp(t) ? (t.sessions / t.target.cpuCoreShare).toFixed(0) : 'saturated') : '—',
        `${pct(t.loadCpuCoreShare)} / ${(Math.max(t.c2u.sendLagUs.p99, t.u2c.sendLagUs.p99) / 1000).toFixed(1)} ms`,
        `${bg(t.background)}${t.noisy ? ' ⚠' : ''}`,
      ]),
      ['r', 'l'],
    ),
  );
  for (const d of rows.filter((r) => r.path === 'direct')) {
    const expected = d.c2u.expectedFramesPerS + d.u2c.expectedFramesPerS;
    if (d.framesPerS < 0.99 * expected || d.delayed > 0.01 * (d.c2u.receivedInWindow + d.u2c.receivedInWindow)) {
      parts.push(
        '',
        `At ${d.sessions} sessions the load generator alone (direct, no hop) already falls behind: ${pct(d.framesPerS / expected)} of the offered frames delivered, ${d.delayed} delayed, at ${pct(d.loadCpuCoreShare)} of its core. ` +
          'Latency and delay figures at this size belong to the load generator and the relay (or pipe) together; the relay\'s own cost is its CPU per session-second, and its capacity the "sessions / core" measured below saturation.',
      );
    }
  }
  if (rows.some((r) => r.cutOff)) {
    parts.push('', `\\* frames were still arriving when the wait for stragglers stopped (${o.maxGraceMs / 1000} s after the last send): these were queued behind an overloaded process, not known to be lost.`);
  }
  for (const t of rows.filter((r) => r.connectFailed > 0 || r.foreignFrames > 0 || r.closedEarly > 0)) {
    parts.push(
      '',
      `${t.sessions} via ${pathName(t.path)}: ${t.connectFailed} failed to connect${t.connectError ? ` (${t.connectError})` : ''}, ${t.closedEarly} closed early, ${t.foreignFrames} non-bench frames${t.foreignSample.length ? `, e.g. \`${t.foreignSample[0].slice(0, 160)}\`` : ''}`,
    );
  }
  parts.push('', '### Memory per session (KiB)', '');
  parts.push('Idle: every session connected, no traffic, after forced GC (`--expose-gc`), minus the same process before any session. Active: at the end of the streaming window, no GC.', '');
  parts.push(
    table(
      ['sessions', 'path', 'idle RSS', 'idle JS heap', 'idle external', 'active RSS', 'active JS heap'],
      rows
        .filter((t) => t.target && t.sessions >= 100)
        .map((t) => {
          const m = t.target as NonNullable<ThroughputRow['target']>;
          return [t.sessions, pathName(t.path), kib(m.idleRssPerSession), kib(m.idleHeapPerSession), kib(m.idleExternalPerSession), kib(m.activeRssPerSession), kib(m.activeHeapPerSession)];
        }),
      ['r', 'l'],
    ),
  );
  parts.push('', '### Relay ÷ bare pipe', '');
  const ratioRows: (string | number)[][] = [];
  for (const n of o.sessions) {
    const rel = rows.find((t) => t.sessions === n && t.path === 'relay');
    const pip = rows.find((t) => t.sessions === n && t.path === 'pipe');
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
  parts.push(table(['sessions', 'frames/s', 'CPU / session-s', 'c→u p50', 'u→c p50', 'c→u p99', 'u→c p99', 'idle RSS / session', 'active RSS / session'], ratioRows, ['r']), '');
  // --translated: the same relay with every session translated beta⇄GA (audio renamed by splicing).
  const perFrame = (t: ThroughputRow): number => (t.target && t.framesPerS > 0 ? (t.target.cpuCoreShare * 1e6) / t.framesPerS : NaN);
  const translatedRows: (string | number)[][] = [];
  for (const n of o.sessions) {
    const rel = rows.find((t) => t.sessions === n && t.path === 'relay');
    for (const kind of ['relay-translated', 'relay-translated-up'] as const) {
      const tr = rows.find((t) => t.sessions === n && t.path === kind);
      if (!rel?.target || !tr?.target) continue;
      translatedRows.push([n, pathName(kind), perFrame(rel).toFixed(2), perFrame(tr).toFixed(2), x(ratio(perFrame(tr), perFrame(rel))), x(ratio(tr.u2c.latencyUs.p50, rel.u2c.latencyUs.p50))]);
    }
  }
  if (translatedRows.length > 0) {
    parts.push('### Translated ÷ untranslated relay (target ≤ 1.05× CPU per audio frame)', '');
    parts.push('CPU per audio frame = the process CPU ÷ frames delivered, both directions together (appends pass untranslated; deltas are renamed).', '');
    parts.push(table(['sessions', 'translated path', 'relay CPU µs / frame', 'translated CPU µs / frame', 'ratio', 'u→c p50'], translatedRows, ['r', 'l']), '');
  }
  return parts;
}

export function renderMarkdown(r: BenchResults): string {
  const o = r.options;
  const m = r.machine;
  const parts: string[] = [`# Relay benchmark — ${r.finishedAt}`, ''];
  parts.push(`Machine: ${m.cpuModel}, ${m.cores} cores, ${(m.memoryBytes / 2 ** 30).toFixed(1)} GiB, Node ${m.node}, ${m.os}; ws ${m.ws}, fastify ${m.fastify}; open-file limit ${m.fdLimit}.`);
  parts.push(`Placement: ${r.placement}.`);
  parts.push(
    `Node flags: relay/pipe ${o.targetNodeArgs.join(' ') || '(none)'}, load generator ${o.loadNodeArgs.join(' ') || '(none)'}. Frames to the upstream: UPSTREAM_MASKING=${o.upstreamMasking} (relay and pipe alike).`,
  );
  if (o.targetNodePath || o.loadNodePath) {
    parts.push(`Experiment: relay/pipe process NODE_PATH=${o.targetNodePath ?? '(none)'}; load process NODE_PATH=${o.loadNodePath ?? '(none)'}.`);
  }
  parts.push(`Run: ${o.quick ? 'quick' : 'full'}. Frames: append ${frameBytes('append')} B, delta ${frameBytes('delta')} B (100 ms of 24 kHz pcm16 = 4800 B raw = 6400 B base64, plus the JSON envelope).`, '');
  if (r.latency) parts.push(...latencySection(r.latency));
  if (r.throughput.length) parts.push(...throughputSection(r.throughput, o));
  for (const h of r.heap) {
    parts.push(`### What an idle ${pathName(h.kind)} session keeps on the JS heap`, '');
    parts.push(
      `Heap-snapshot diff, ${h.sessions} idle sessions minus none: ${(h.heapPerSession / 1024).toFixed(1)} KiB per session. ` +
        'Left: charged to the nearest class instance that refers to it (who keeps it). Right: by the objects\' own constructor (what it is).',
      '',
    );
    const esc = (k: string): string => k.replace(/\|/g, '\\|');
    const rows: (string | number)[][] = [];
    for (let i = 0; i < 12; i++) {
      const o = h.byOwner[i];
      const c = h.top[i];
      if (!o && !c) break;
      rows.push([o ? o.bytes.toFixed(0) : '', o ? esc(o.key) : '', c ? c.bytes.toFixed(0) : '', c ? c.count.toFixed(1) : '', c ? esc(c.key) : '']);
    }
    parts.push(table(['B / session', 'kept by', 'B / session', 'objects / session', 'object'], rows, ['r', 'l', 'r', 'r', 'l']), '');
  }
  if (r.profiles.length) {
    parts.push('## Where the time goes (CPU profile of the steady-state window)', '');
    for (const p of r.profiles) {
      parts.push(formatProfile({ ...p.summary, top: p.summary.top.slice(0, 15) }, `${capitalise(pathName(p.kind))}, ${p.sessions} sessions, other processes ${bg(p.background)} (${p.file})`), '');
    }
  }
  parts.push('## Targets (measured, not asserted)', '');
  parts.push(table(['target', 'measured', 'met'], r.verdicts.map((v) => [v.target, v.measured, v.met === null ? 'n/a' : v.met ? 'yes' : '**no**']), ['l', 'l', 'l']), '');
  return parts.join('\n');
}
