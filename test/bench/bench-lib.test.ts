import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { summariseProfile } from '../../bench/lib/cpuprofile';
import type { Socket } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { FramePrefixReader } from '../../bench/lib/frame-prefix-reader';
import { AUDIO_RAW_BYTES, frameBytes, makeFrame, makeWireFrame, readStamp, STAMP_PREFIX_BYTES } from '../../bench/lib/frames';
import { diffPerSession, groupSnapshot } from '../../bench/lib/heapsnapshot';
import { concatSamples, percentiles, Samples } from '../../bench/lib/stats';

describe('bench frames', () => {
  it('are realistic Realtime events: valid JSON, the right type, 100 ms of 24 kHz pcm16 in base64', () => {
    const append = JSON.parse(makeFrame('append', { session: 7, seq: 1, scheduledUs: 1, sentUs: 2 }).toString('utf8')) as { type: string; audio: string };
    expect(append.type).toBe('input_audio_buffer.append');
    expect(Buffer.from(append.audio, 'base64').length).toBe(AUDIO_RAW_BYTES);
    expect(append.audio.length).toBe(6400);
    const delta = JSON.parse(makeFrame('delta', { session: 7, seq: 1, scheduledUs: 1, sentUs: 2 }).toString('utf8')) as { type: string; delta: string };
    expect(delta.type).toBe('response.output_audio.delta');
    expect(delta.delta.length).toBe(6400);
    expect(frameBytes('append')).toBeGreaterThan(6400);
  });

  it('carry their stamp through unchanged bytes', () => {
    const stamp = { session: 999, seq: 123456, scheduledUs: 98765432109, sentUs: 98765432999 };
    for (const kind of ['append', 'delta'] as const) expect(readStamp(kind, makeFrame(kind, stamp))).toEqual(stamp);
  });

  it('go out pre-masked as a valid client text frame that a ws server reads back byte for byte', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    try {
      const got = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) => {
        wss.once('connection', (ws) => ws.once('message', (data: Buffer, isBinary: boolean) => resolve({ data, isBinary })));
      });
      const port = (wss.address() as { port: number }).port;
      const client = new WebSocket(`ws://127.0.0.1:${port}`);
      await new Promise<void>((resolve) => client.once('open', () => resolve()));
      const stamp = { session: 3, seq: 42, scheduledUs: 123, sentUs: 456 };
      (client as unknown as { _socket: Socket })._socket.write(makeWireFrame('append', stamp));
      const { data, isBinary } = await got;
      expect(isBinary).toBe(false);
      expect(data.equals(makeFrame('append', stamp))).toBe(true);
      client.close();
    } finally {
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    }
  });

  it('do not mistake other frames for bench frames', () => {
    expect(readStamp('delta', Buffer.from('{"type":"error","error":{"message":"x"}}'))).toBeNull();
    expect(readStamp('delta', makeFrame('append', { session: 1, seq: 1, scheduledUs: 1, sentUs: 1 }))).toBeNull();
  });
});

describe('bench stats', () => {
  it('reports nearest-rank percentiles of what was observed', () => {
    const s = new Samples(2);
    for (let i = 1; i <= 1000; i++) s.add(i);
    const p = percentiles(s.values());
    expect(p).toMatchObject({ count: 1000, p50: 500, p99: 990, p999: 999, max: 1000 });
    expect(percentiles([]).count).toBe(0);
    expect(Array.from(concatSamples([new Float64Array([1, 2]), new Float64Array([3])]))).toEqual([1, 2, 3]);
  });
});

describe('bench CPU profile summary', () => {
  it('counts self time per function inside the window, idle apart', () => {
    const profile = {
      nodes: [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1 } },
        { id: 2, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        { id: 3, callFrame: { functionName: 'forward', url: 'file:///x/src/relay/relay-session.ts', lineNumber: 9 } },
      ],
      startTime: 1000,
      endTime: 1000 + 5000,
      samples: [3, 3, 2, 3, 2],
      timeDeltas: [0, 1000, 1000, 1000, 1000],
    };
    // A sample stands for the time until the next one: forward 3 × 1 ms, idle 1 × 1 ms, the last none.
    const all = summariseProfile(profile);
    expect(all.busyMs).toBeCloseTo(3, 5);
    expect(all.idleMs).toBeCloseTo(1, 5);
    expect(all.top[0]).toMatchObject({ name: 'forward', category: 'relay (src/relay)' });
    // Samples at t = 2000 and 3000 only: forward then idle.
    const cropped = summariseProfile(profile, { fromUs: 1500, toUs: 3500 });
    expect(cropped.busyMs).toBeCloseTo(1, 5);
  });
});

describe('bench heap snapshot grouping', () => {
  it('charges arrays and closures to the class instance that holds them', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-heap-test-'));
    try {
      // Nodes: [type, name, id, self_size, edge_count]; edges: [type, name, to_node (index × stride)].
      const strings = ['(root)', 'RelaySession', '', 'Object'];
      const snapshot = (sessions: number): object => {
        const nodes: number[] = [0, 0, 1, 0, sessions];
        for (let s = 0; s < sessions; s++) {
          nodes.push(1, 1, 10 + s, 100, 1); // object RelaySession, holding one array
          nodes.push(2, 2, 20 + s, 40, 0); // the array
        }
        // Edges are listed node by node: the root's first, then each session's.
        const ordered: number[] = [];
        for (let s = 0; s < sessions; s++) ordered.push(0, 0, (1 + s * 2) * 5);
        for (let s = 0; s < sessions; s++) ordered.push(0, 0, (2 + s * 2) * 5);
        return {
          snapshot: { meta: { node_fields: ['type', 'name', 'id', 'self_size', 'edge_count'], node_types: [['synthetic', 'object', 'array']], edge_fields: ['type', 'name_or_index', 'to_node'], edge_types: [['property']] } },
          nodes,
          edges: ordered,
          strings,
        };
      };
      writeFileSync(path.join(dir, 'a.heapsnapshot'), JSON.stringify(snapshot(0)));
      writeFileSync(path.join(dir, 'b.heapsnapshot'), JSON.stringify(snapshot(3)));
      const before = groupSnapshot(path.join(dir, 'a.heapsnapshot'));
      const after = groupSnapshot(path.join(dir, 'b.heapsnapshot'));
      expect(diffPerSession(before.byOwner, after.byOwner, 3)).toEqual([{ key: 'RelaySession', count: 2, bytes: 140 }]);
      expect(diffPerSession(before.byConstructor, after.byConstructor, 3).map((g) => g.key)).toEqual(['RelaySession', '(array)']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('FramePrefixReader (the load generator\'s frame reader)', () => {
  const stamp = { session: 12, seq: 345, scheduledUs: 6789, sentUs: 6790 };

  function readAll(wire: Buffer, cuts: number[]): Array<{ opcode: number; length: number; stamp: ReturnType<typeof readStamp> }> {
    const out: Array<{ opcode: number; length: number; stamp: ReturnType<typeof readStamp> }> = [];
    const reader = new FramePrefixReader(STAMP_PREFIX_BYTES, (f) => out.push({ opcode: f.opcode, length: f.length, stamp: f.opcode === 1 ? readStamp(f.length === frameBytes('append') ? 'append' : 'delta', f.head, f.length) : null }));
    let at = 0;
    for (const c of [...cuts, wire.length]) {
      reader.push(wire.subarray(at, c));
      at = c;
    }
    return out;
  }

  it('reads stamps of masked and unmasked frames split at every possible byte', () => {
    const append = makeWireFrame('append', stamp);
    const delta = makeWireFrame('delta', { ...stamp, seq: 346 });
    const close = Buffer.from([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2]);
    const wire = Buffer.concat([append, delta, close]);
    // Every cut inside the headers and the stamps, plus a spread of cuts elsewhere.
    const cutPoints = new Set<number>();
    for (let i = 1; i < 160; i++) cutPoints.add(i);
    for (let i = append.length - 5; i < append.length + 160; i++) cutPoints.add(i);
    for (let i = 200; i < wire.length; i += 997) cutPoints.add(i);
    for (const cut of cutPoints) {
      const frames = readAll(wire, [cut]);
      expect(frames).toEqual([
        { opcode: 1, length: frameBytes('append'), stamp },
        { opcode: 1, length: frameBytes('delta'), stamp: { ...stamp, seq: 346 } },
        { opcode: 8, length: 2, stamp: null },
      ]);
    }
    // One byte at a time.
    expect(readAll(wire, Array.from({ length: wire.length - 1 }, (_, i) => i + 1))).toHaveLength(3);
  });

  it('reads what ws writes, masked by a random key', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
    try {
      const got = new Promise<ReturnType<typeof readStamp>>((resolve) => {
        wss.once('connection', (ws) => {
          const socket = (ws as unknown as { _socket: Socket })._socket;
          socket.removeAllListeners('data');
          const reader = new FramePrefixReader(STAMP_PREFIX_BYTES, (f) => resolve(readStamp('append', f.head, f.length)));
          socket.on('data', (c: Buffer) => reader.push(c));
        });
      });
      const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
      await new Promise<void>((resolve) => client.once('open', () => resolve()));
      client.send(makeFrame('append', stamp), { binary: false });
      expect(await got).toEqual(stamp);
      client.terminate();
    } finally {
      wss.close();
    }
  });
});
