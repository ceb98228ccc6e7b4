/**
 * Self size by constructor from a V8 `.heapsnapshot`, and the per-session difference of two
 * (N idle sessions minus none): which objects an idle session keeps alive.
 *
 *   npx tsx bench/lib/heapsnapshot.ts <before.heapsnapshot> <after.heapsnapshot> <sessions>
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: unknown[] } };
  nodes: number[];
  strings: string[];
}

export interface HeapGroup {
  key: string;
  count: number;
  bytes: number;
}

/** Groups: objects and closures by constructor / function name, everything else by kind. */
export function groupSnapshot(file: string): Map<string, HeapGroup> {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0] as string[];
  const stride = fields.length;
  const fType = fields.indexOf('type');
  const fName = fields.indexOf('name');
  const fSize = fields.indexOf('self_size');
  const out = new Map<string, HeapGroup>();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + fType]];
    const name = snap.strings[nodes[i + fName]];
    let key: string;
    if (type === 'object' || type === 'native') key = name.length > 60 ? `${name.slice(0, 57)}...` : name;
    else if (type === 'closure') key = `closure ${name || '(anonymous)'}`;
    else key = `(${type})`;
    const g = out.get(key) ?? { key, count: 0, bytes: 0 };
    g.count++;
    g.bytes += nodes[i + fSize];
    out.set(key, g);
  }
  return out;
}

/** Per-session growth, biggest first. */
export function diffPerSession(before: Map<string, HeapGroup>, after: Map<string, HeapGroup>, sessions: number, top = 25): HeapGroup[] {
  const rows: HeapGroup[] = [];
  for (const [key, a] of after) {
    const b = before.get(key);
    const bytes = (a.bytes - (b?.bytes ?? 0)) / sessions;
    const count = (a.count - (b?.count ?? 0)) / sessions;
    if (bytes > 0) rows.push({ key, count, bytes });
  }
  return rows.sort((x, y) => y.bytes - x.bytes).slice(0, top);
}

if (require.main === module) {
  const [before, after, n] = process.argv.slice(2);
  if (!before || !after || !n) {
    console.error('usage: tsx bench/lib/heapsnapshot.ts <before> <after> <sessions>');
    process.exit(2);
  }
  for (const r of diffPerSession(groupSnapshot(before), groupSnapshot(after), Number(n))) {
    console.log(`${r.bytes.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(7)}×  ${r.key}`);
  }
}
