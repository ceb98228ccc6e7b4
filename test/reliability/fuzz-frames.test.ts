/**
 * Property-based fuzzing of the client side of the WebSocket: malformed, oversized, deeply
 * nested, invalid-UTF-8 and wrongly typed frames, against a full relay (identity, metering,
 * locked ephemeral sessions) in front of the simulator.
 *
 * Properties, for every frame:
 *  - the relay process survives (no unhandled rejection or uncaught exception);
 *  - the offending client gets an `error` event, except where noted (invalid UTF-8 and frames
 *    past the socket's maxPayload may close it instead: ws answers 1007 / 1009 itself);
 *  - a bystander session opened before the fuzzing is never disturbed, and completes a
 *    response.create → response.done afterwards.
 */
import fc from 'fast-check';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import type { TestClient } from '../support/ws-client';
import { connect, converse, crashWatch, HAMMER_ENV, isOpen } from './helpers';

// Small enough that "too large" frames are cheap to send, large enough for deep nesting.
const MAX_FRAME_BYTES = 256 * 1024;
// What the relay gives ws as maxPayload (src/app.ts): beyond it ws closes with 1009.
const WS_MAX_PAYLOAD = MAX_FRAME_BYTES * 2 + 1024 * 1024;
const RUNS = 25;

const KNOWN_TYPES = new Set([
  'session.update', 'input_audio_buffer.append', 'input_audio_buffer.commit', 'input_audio_buffer.clear',
  'conversation.item.create', 'conversation.item.truncate', 'conversation.item.delete', 'conversation.item.retrieve',
  'response.create', 'response.cancel', 'output_audio_buffer.clear', 'transcription_session.update',
]);

type Kind = 'plain' | 'locked';

describe('fuzzing client frames', () => {
  let r: RelayInstance;
  let apiKey: string;
  let bystander: TestClient;
  const crashes = crashWatch();
  const clients: Partial<Record<Kind, TestClient>> = {};
  let probeCounter = 0;

  /** A relay ephemeral key whose session locks instructions and tools: exercises the relay's own guards. */
  async function lockedKey(): Promise<string> {
    const res = await r.request<{ value: string }>('POST', '/v1/realtime/client_secrets', {
      headers: { authorization: `Bearer ${apiKey}` },
      body: { session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.', tools: [{ type: 'function', name: 'book', parameters: { type: 'object' } }] } },
    });
    if (res.status !== 200) throw new Error(`mint answered ${res.status}`);
    return res.body.value;
  }

  /** The fuzz client of a kind, reconnected if a previous frame legitimately got it closed. */
  async function client(kind: Kind): Promise<TestClient> {
    const existing = clients[kind];
    if (existing && isOpen(existing)) return existing;
    const c = await connect(r, kind === 'plain' ? apiKey : await lockedKey());
    clients[kind] = c;
    return c;
  }

  /**
   * Sends the frame, then a probe whose answer marks the end of everything the frame caused
   * (the relay forwards in order and the simulator answers in order). Returns the events in
   * between, or 'closed' with the close code when the socket was closed.
   */
  async function exchange(c: TestClient, send: () => void): Promise<{ events: Array<Record<string, unknown>> } | { closed: number }> {
    const from = c.events.length;
    const probe = `probe_${++probeCounter}`;
    send();
    if (isOpen(c)) c.send({ type: 'conversation.item.retrieve', item_id: probe, event_id: probe });
    const isProbeAnswer = (e: Record<string, unknown>): boolean => (e.error as { event_id?: unknown } | undefined)?.event_id === probe;
    // Event-driven rather than TestClient.waitFor, whose timer would outlive a closed socket.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no answer to ${probe}; got ${c.types().slice(from).join(', ')}`));
      }, 5000);
      // TestClient registered its listener first, so c.events already holds the new event.
      const check = (): void => {
        if (!isOpen(c) || c.events.slice(from).some(isProbeAnswer)) {
          cleanup();
          resolve();
        }
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        c.ws.off('message', check);
        c.ws.off('close', check);
      };
      c.ws.on('message', check);
      c.ws.on('close', check);
      check();
    });
    if (!isOpen(c)) return { closed: (await c.closed).code };
    const events = c.events.slice(from);
    return { events: events.filter((e) => !isProbeAnswer(e)) };
  }

  function errorsIn(events: Array<Record<string, unknown>>): Array<{ type?: string; code?: string }> {
    return events.filter((e) => e.type === 'error').map((e) => e.error as { type?: string; code?: string });
  }

  beforeAll(async () => {
    crashes.install();
    r = await startRelay({ ...HAMMER_ENV, MAX_FRAME_BYTES: String(MAX_FRAME_BYTES) });
    apiKey = await r.createKey('fuzzer', ['realtime', 'mint']);
    bystander = await connect(r, await r.createKey('bystander', ['realtime']));
  });

  afterEach(async () => {
    // After each property: the bystander is untouched and still converses.
    expect(isOpen(bystander)).toBe(true);
    await converse(bystander);
    crashes.assertNone();
    const health = await r.request('GET', '/healthz');
    expect(health.status).toBe(200);
  });

  afterAll(async () => {
    for (const c of Object.values(clients)) c?.close();
    bystander?.close();
    await r?.close();
    crashes.uninstall();
  });

  it('answers text that is not a JSON event with invalid_json / invalid_event', async () => {
    const notAnEvent = fc
      .oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v) ?? 'null'),
        fc.constantFrom('', ' ', '{', '}', '{"type":', '{"type":"x"', '{"type":"x",}', '[]', 'null', 'true', '"type"', '{"type":"a"}x', '\u0000'),
      )
      .filter((s) => {
        try {
          const v: unknown = JSON.parse(s);
          return !(typeof v === 'object' && v !== null && !Array.isArray(v) && typeof (v as { type?: unknown }).type === 'string');
        } catch {
          return true;
        }
      });
    await fc.assert(
      fc.asyncProperty(notAnEvent, fc.constantFrom<Kind>('plain', 'locked'), async (text, kind) => {
        const c = await client(kind);
        const out = await exchange(c, () => c.ws.send(text));
        expect('events' in out).toBe(true);
        if (!('events' in out)) return;
        expect(errorsIn(out.events).map((e) => e.code)).toEqual([expect.stringMatching(/^invalid_(json|event)$/)]);
        crashes.assertNone();
      }),
      { numRuns: RUNS },
    );
  });

  it('answers events with a missing or wrongly typed `type` with an error', async () => {
    const badType = fc.oneof(
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string(), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
      fc.string({ maxLength: 60 }).filter((t) => !KNOWN_TYPES.has(t)),
    );
    const frame = fc.oneof(
      fc.record({ type: badType, event_id: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }) }, { requiredKeys: ['type'] }),
      fc.record({ event_id: fc.string({ maxLength: 20 }), session: fc.constant({}) }),
      // A second, later `type` key: JSON's last-key-wins is what the upstream would act on.
      fc.tuple(fc.constantFrom(...KNOWN_TYPES), badType).map(([t, b]) => `{"type":${JSON.stringify(t)},"type":${JSON.stringify(b)}}`),
    );
    await fc.assert(
      fc.asyncProperty(frame, fc.constantFrom<Kind>('plain', 'locked'), async (f, kind) => {
        const c = await client(kind);
        const out = await exchange(c, () => c.ws.send(typeof f === 'string' ? f : JSON.stringify(f)));
        expect('events' in out).toBe(true);
        if (!('events' in out)) return;
        expect(errorsIn(out.events).length).toBeGreaterThanOrEqual(1);
        crashes.assertNone();
      }),
      { numRuns: RUNS },
    );
  });

  it('answers known events with wrongly typed fields with an error, never a broken session', async () => {
    const weird = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.integer(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 3 }),
    );
    const weirdResponse = fc.oneof(
      weird,
      fc.record({
        output_modalities: weird,
        instructions: weird,
        tools: weird,
        input: weird,
        conversation: weird,
        tool_choice: weird,
      }, { requiredKeys: [] }),
    );
    const hugeId = fc.integer({ min: 10_000, max: 200_000 }).map((n) => 'e'.repeat(n));
    const frame = fc.oneof(
      fc.record({ type: fc.constant('session.update'), session: weird }),
      fc.record({ type: fc.constant('session.update'), session: fc.record({ instructions: weird, tools: weird, output_modalities: weird, audio: weird }, { requiredKeys: [] }) }),
      fc.record({ type: fc.constant('response.create'), response: weirdResponse }),
      // Any string is a valid (silently appended) audio payload: only non-strings are wrong here.
      fc.record({ type: fc.constant('input_audio_buffer.append'), audio: weird.filter((v) => typeof v !== 'string') }),
      fc.record({ type: fc.constant('conversation.item.create'), item: weird }),
      fc.record({ type: fc.constant('conversation.item.truncate'), item_id: weird, content_index: weird, audio_end_ms: weird }),
      fc.record({ type: fc.constantFrom('conversation.item.delete', 'conversation.item.retrieve'), item_id: weird }),
      fc.record({ type: fc.constantFrom(...KNOWN_TYPES), event_id: fc.oneof(hugeId, fc.integer(), fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 })) }),
    );
    await fc.assert(
      fc.asyncProperty(frame, fc.constantFrom<Kind>('plain', 'locked'), async (f, kind) => {
        const c = await client(kind);
        const from = c.events.length;
        const out = await exchange(c, () => c.send(f));
        expect('events' in out).toBe(true);
        if (!('events' in out)) return;
        const accepted = out.events.some((e) => e.type === 'response.created' || e.type === 'session.updated' || e.type === 'input_audio_buffer.cleared' || e.type === 'input_audio_buffer.committed');
        // The simulator, like the provider, accepts some of these (an ignored extra field, an
        // empty commit): then the event went through and the session simply goes on.
        if (!accepted) expect(errorsIn(out.events).length).toBeGreaterThanOrEqual(1);
        if (out.events.some((e) => e.type === 'response.created')) {
          // Let it finish: a response still streaming would answer the next run's frames.
          await c.waitFor('response.done', 8000, from);
        }
        expect(isOpen(c)).toBe(true);
        crashes.assertNone();
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('survives deeply nested frames, on plain and locked sessions', async () => {
    const nested = (depth: number, open: string, close: string): string => open.repeat(depth) + close.repeat(depth);
    const frame = fc
      .record({
        depth: fc.integer({ min: 100, max: 40_000 }),
        shape: fc.constantFrom('array', 'object'),
        where: fc.constantFrom('instructions', 'tools', 'item', 'before-type', 'response-instructions'),
      })
      .map(({ depth, shape, where }) => {
        const deep = shape === 'array' ? nested(depth, '[', ']') : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
        switch (where) {
          case 'instructions':
            return `{"type":"session.update","session":{"type":"realtime","instructions":${deep}}}`;
          case 'tools':
            return `{"type":"session.update","session":{"type":"realtime","tools":${deep}}}`;
          case 'item':
            return `{"type":"conversation.item.create","item":${deep}}`;
          case 'response-instructions':
            return `{"type":"response.create","response":{"instructions":${deep}}}`;
          default:
            return `{"deep":${deep},"type":"conversation.item.create"}`;
        }
      });
    await fc.assert(
      fc.asyncProperty(frame, fc.constantFrom<Kind>('plain', 'locked'), async (f, kind) => {
        const c = await client(kind);
        const from = c.events.length;
        const out = await exchange(c, () => c.ws.send(f));
        expect('events' in out).toBe(true);
        if (!('events' in out)) return;
        // Answered: an error, or (the simulator is lenient about field types) the event's
        // acknowledgement. Silence would mean the frame was lost somewhere.
        expect(out.events.length).toBeGreaterThanOrEqual(1);
        if (out.events.some((e) => e.type === 'response.created')) await c.waitFor('response.done', 8000, from);
        if (kind === 'locked' && (f.includes('"instructions"') || f.includes('"tools"'))) {
          // A locked field may only be re-sent with its locked value: the relay itself refuses,
          // as nesting_too_deep past HTTP_BODY_MAX_DEPTH-like frame depth, or as a relay_error when
          // the value is too deep for the check to finish.
          expect(errorsIn(out.events).map((e) => e.code)).toEqual(expect.arrayContaining([expect.stringMatching(/^(locked_session_field|nesting_too_deep|relay_error)$/)]));
        }
        expect(isOpen(c)).toBe(true);
        crashes.assertNone();
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses oversized frames with frame_too_large, and survives frames past the socket limit', async () => {
    const size = fc.oneof(
      fc.integer({ min: MAX_FRAME_BYTES + 1, max: MAX_FRAME_BYTES * 2 }),
      fc.integer({ min: WS_MAX_PAYLOAD + 1, max: WS_MAX_PAYLOAD + 64 * 1024 }),
    );
    await fc.assert(
      fc.asyncProperty(size, fc.constantFrom('input_audio_buffer.append', 'session.update', 'response.create'), async (bytes, type) => {
        const c = await client('plain');
        const head = `{"type":"${type}","audio":"`;
        const frame = head + 'A'.repeat(bytes - head.length - 2) + '"}';
        const out = await exchange(c, () => c.ws.send(frame));
        if (bytes > WS_MAX_PAYLOAD) {
          // ws itself refuses to read such a frame: a close with 1009 is the honest answer.
          expect(out).toEqual({ closed: 1009 });
        } else {
          expect('events' in out && errorsIn(out.events).map((e) => e.code)).toEqual(['frame_too_large']);
          expect(isOpen(c)).toBe(true);
        }
        crashes.assertNone();
      }),
      { numRuns: 8 },
    );
  });

  it('answers binary frames with an error and closes invalid UTF-8 text with 1007, leaving others alone', async () => {
    // At least one byte that can never occur in UTF-8, somewhere in the frame.
    const invalidUtf8 = fc
      .tuple(fc.uint8Array({ maxLength: 64 }), fc.constantFrom(0xff, 0xfe, 0xc0, 0xc1, 0xf8), fc.uint8Array({ maxLength: 64 }))
      .map(([a, bad, b]) => Buffer.concat([Buffer.from('{"type":"session.update","x":"'), a, Buffer.from([bad]), b, Buffer.from('"}')]));
    await fc.assert(
      fc.asyncProperty(fc.boolean(), invalidUtf8, async (asBinary, bytes) => {
        const c = await client('plain');
        const out = await exchange(c, () => c.ws.send(bytes, { binary: asBinary }));
        if (asBinary) {
          expect('events' in out && errorsIn(out.events).map((e) => e.code)).toEqual(['binary_frame_unsupported']);
        } else {
          expect(out).toEqual({ closed: 1007 });
        }
        crashes.assertNone();
      }),
      { numRuns: 12 },
    );
  });
});
