/**
 * Self size from a V8 `.heapsnapshot`, and the per-session difference of two (N idle sessions
 * minus none): which objects an idle session keeps alive.
 *
 * Two groupings: by the node's own constructor (what the objects are), and by owner — every
 * array, closure, context, string or plain object is charged to the nearest class instance
 * that refers to it (a Map's table to the SessionMeter holding the Map, a listener closure to
 * the WebSocket it listens on), which answers "who keeps that memory".
 *
 *   npx tsx bench/lib/heapsnapshot.ts <before.heapsnapshot> <after.heapsnapshot> <sessions>
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: unknown[]; edge_fields: string[]; edge_types: unknown[] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapGroup {
  key: string;
  count: number;
  bytes: number;
}

export interface HeapGroups {
  byConstructor: Map<string, HeapGroup>;
  byOwner: Map<string, HeapGroup>;
}

/** Built-in containers and V8 internals: never an owner worth naming. */
const GENERIC = new Set(['Object', 'Array', 'Map', 'Set', 'WeakMap', 'WeakSet', 'system / Context', 'Function', 'Promise', 'Error', 'Arguments', 'Buffer', 'Uint8Array', 'FastBuffer', 'ArrayBuffer']);
const OWNER_DEPTH = 8;

function add(m: Map<string, HeapGroup>, key: string, bytes: number): void {
  const g = m.get(key) ?? { key, count: 0, bytes: 0 };
  g.count++;
  g.bytes += bytes;
  m.set(key, g);
}

export function groupSnapshot(file: string): HeapGroups {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as Snapshot;
  const meta = snap.snapshot.meta;
  const types = meta.node_types[0] as string[];
  const edgeTypes = meta.edge_types[0] as string[];
  const stride = meta.node_fields.length;
  const fType = meta.node_fields.indexOf('type');
  const fName = meta.node_fields.indexOf('name');
  const fSize = meta.node_fields.indexOf('self_size');
  const fEdges = meta.node_fields.indexOf('edge_count');
  const eStride = meta.edge_fields.length;
  const eType = meta.edge_fields.indexOf('type');
  const eTo = meta.edge_fields.indexOf('to_node');
  const { nodes, edges, strings } = snap;
  const count = nodes.length / stride;

  const named = new Uint8Array(count);
  const keys: string[] = new Array<string>(count);
  for (let n = 0; n < count; n++) {
    const i = n * stride;
    const type = types[nodes[i + fType]];
    const name = strings[nodes[i + fName]];
    if (type === 'object' || type === 'native') {
      keys[n] = name.length > 60 ? `${name.slice(0, 57)}...` : name;
      named[n] = type === 'object' && !GENERIC.has(name) && /^[A-Z]/.test(name) ? 1 : 0;
    } else if (type === 'closure') keys[n] = `closure ${name || '(anonymous)'}`;
    else keys[n] = `(${type})`;
  }

  // The first strong referrer of each node: enough to walk up to a named owner.
  const owner = new Int32Array(count).fill(-1);
  const skip = new Set(['weak', 'shortcut']);
  let e = 0;
  for (let n = 0; n < count; n++) {
    const edgeCount = nodes[n * stride + fEdges];
    for (let k = 0; k < edgeCount; k++, e += eStride) {
      if (skip.has(edgeTypes[edges[e + eType]])) continue;
      const to = edges[e + eTo] / stride;
      if (owner[to] < 0 && to !== n) owner[to] = n;
    }
  }

  const byConstructor = new Map<string, HeapGroup>();
  const byOwner = new Map<string, HeapGroup>();
  for (let n = 0; n < count; n++) {
    const size = nodes[n * stride + fSize];
    add(byConstructor, keys[n], size);
    let o = n;
    for (let d = 0; d < OWNER_DEPTH && o >= 0 && !named[o]; d++) o = owner[o];
    add(byOwner, o >= 0 && named[o] ? keys[o] : '(no class instance within reach)', size);
  }
  return { byConstructor, byOwner };
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

export function totalBytes(m: Map<string, HeapGroup>): number {
  let t = 0;
  for (const g of m.values()) t += g.bytes;
  return t;
}

if (require.main === module) {
  const [before, after, n] = process.argv.slice(2);
  if (!before || !after || !n) {
    console.error('usage: tsx bench/lib/heapsnapshot.ts <before> <after> <sessions>');
    process.exit(2);
  }
  const b = groupSnapshot(before);
  const a = groupSnapshot(after);
  for (const [title, pick] of [
    ['by owner', (g: HeapGroups) => g.byOwner],
    ['by constructor', (g: HeapGroups) => g.byConstructor],
  ] as const) {
    console.log(`\n${title}:`);
    for (const r of diffPerSession(pick(b), pick(a), Number(n))) console.log(`${r.bytes.toFixed(0).padStart(7)} B  ${r.count.toFixed(2).padStart(7)}×  ${r.key}`);
  }
}
