import fc from 'fast-check';
import { RealtimeSimulator } from '../../src/simulator';
import { buildUsage, cachedTokens } from '../../src/simulator/usage';
import { TestClient, b64bytes, checkUsage, wsUrl, type DeltaEvent, type ResponseEvent } from './helpers';

const counts = fc.record({ text: fc.nat(5000), audio: fc.nat(5000), image: fc.nat(500) });

describe('usage arithmetic', () => {
  it('cached tokens stay within both inputs per kind and totals add up', () => {
    fc.assert(
      fc.property(counts, counts, fc.double({ min: 0, max: 1, noNaN: true }), fc.nat(2000), fc.nat(2000), (prev, cur, f, outText, outAudio) => {
        const cached = cachedTokens(prev, cur, f);
        for (const k of ['text', 'audio', 'image'] as const) {
          expect(cached[k]).toBeLessThanOrEqual(Math.min(prev[k], cur[k]));
          expect(cached[k]).toBeGreaterThanOrEqual(0);
        }
        checkUsage(buildUsage(cur, cached, { text: outText, audio: outAudio }));
      }),
      { numRuns: 200 },
    );
    expect(cachedTokens(null, { text: 10, audio: 10, image: 0 }, 1)).toEqual({ text: 0, audio: 0, image: 0 });
  });
});

async function twoTurnUsage(seed: number): Promise<number[]> {
  const sim = new RealtimeSimulator({ seed, deltaIntervalMs: 0 });
  await sim.start();
  try {
    const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-realtime'));
    const out: number[] = [];
    for (const text of ['first question here', 'second one']) {
      c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } });
      c.send({ type: 'response.create' });
      const u = (await c.waitFor<ResponseEvent>('response.done')).response.usage!;
      out.push(u.input_tokens, u.input_token_details.cached_tokens, u.output_tokens);
    }
    await c.close();
    return out;
  } finally {
    await sim.stop();
  }
}

describe('determinism', () => {
  it('the same seed and input give the same usage', async () => {
    const a = await twoTurnUsage(42);
    const b = await twoTurnUsage(42);
    expect(a).toEqual(b);
    expect(a[4]).toBeGreaterThan(0); // second turn has cached tokens
  });
});

describe('G.711 formats', () => {
  it('bills input and streams output at 8 kHz', async () => {
    const sim = new RealtimeSimulator({ deltaIntervalMs: 0, audioChunkMs: 200 });
    await sim.start();
    try {
      const c = await TestClient.connect(wsUrl(sim.baseUrl, 'model=gpt-4o-realtime-preview-2025-06-03'), { headers: { 'OpenAI-Beta': 'realtime=v1' } });
      c.send({ type: 'session.update', session: { input_audio_format: 'g711_ulaw', output_audio_format: 'g711_alaw', turn_detection: null } });
      await c.waitFor('session.updated');
      c.send({ type: 'input_audio_buffer.append', audio: Buffer.alloc(8000, 0xff).toString('base64') });
      c.send({ type: 'input_audio_buffer.commit' });
      await c.waitFor('input_audio_buffer.committed');
      c.send({ type: 'response.create' });
      const turn = await c.until('response.done');
      expect(turn.some((e) => e.type === 'input_audio_buffer.speech_started')).toBe(false);
      const deltas = turn.filter((e) => e.type === 'response.audio.delta');
      for (const d of deltas) expect(b64bytes((d as DeltaEvent).delta)).toBe(1600);
      const resp = (turn[turn.length - 1] as ResponseEvent).response;
      expect(resp.output_audio_format).toBe('g711_alaw');
      expect(resp.usage!.input_token_details.audio_tokens).toBe(10);
      expect(resp.usage!.output_token_details.audio_tokens).toBe(deltas.length * 4);
      await c.close();
    } finally {
      await sim.stop();
    }
  });
});
