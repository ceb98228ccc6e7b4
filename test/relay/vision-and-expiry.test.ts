import { randomBytes } from 'node:crypto';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { TestClient } from '../support/ws-client';
import { until } from '../support/until';

describe('vision input and session expiry through the relay', () => {
  let r: RelayInstance | undefined;
  afterEach(async () => {
    await r?.close();
    r = undefined;
  });

  it('an input_image (a ~6.7 MB phone photo, over the former 4 MiB limit) passes and is billed at the image price, cached images at the cached price', async () => {
    r = await startRelay();
    const key = await r.createKey('vi', ['realtime', 'usage']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    const photo = `data:image/jpeg;base64,${randomBytes(5 * 1024 * 1024).toString('base64')}`;
    const frame = JSON.stringify({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_image', image_url: photo }, { type: 'input_text', text: 'What is this?' }] } });
    expect(Buffer.byteLength(frame)).toBeGreaterThan(4 * 1024 * 1024);
    c.ws.send(frame);
    await c.waitFor('conversation.item.added');
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
      const done = (await c.waitFor((e) => e.type === 'response.done' && !ids.includes((e.response as { id: string }).id))) as { response: { id: string } };
      ids.push(done.response.id);
    }
    expect(c.types()).not.toContain('error');
    const sim = r.relay.services.simulator!;
    expect(sim.stats.receivedClientEvents.find((e) => e.type === 'conversation.item.create')?.raw).toBe(frame);
    c.close();
    await c.closed;
    const ledger = r.relay.services.metering.ledger;
    let images = 0;
    for (const id of ids) {
      const row = (await until(() => ledger.find('simulator', id), (x) => x !== null))!;
      const u = row.usage;
      expect(u.input_image).toBeGreaterThan(0);
      images += u.input_image;
      // gpt-realtime per token: text 4000 / cached 400 / out 16000; audio 32000 / 400 / 64000; image 5000 / cached 500.
      const expected =
        BigInt(u.input_text - u.cached_text) * 4000n + BigInt(u.cached_text) * 400n + BigInt(u.output_text) * 16000n +
        BigInt(u.input_audio - u.cached_audio) * 32000n + BigInt(u.cached_audio) * 400n + BigInt(u.output_audio) * 64000n +
        BigInt(u.input_image - u.cached_image) * 5000n + BigInt(u.cached_image) * 500n;
      expect(row.costNanos).toBe(expected);
    }
    expect(images).toBe(sim.stats.usageTotals.input_image_tokens);
  });

  it("the upstream's maximum-duration close (session_expired, 1001) reaches the client as sent, with the session's usage billed", async () => {
    r = await startRelay();
    const sim = r.relay.services.simulator!;
    sim.setFaults({ sessionMaxMs: 1500 });
    const key = await r.createKey('ex', ['realtime', 'usage']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    const done = (await c.waitFor('response.done')) as { response: { id: string } };
    const closed = await c.closed;
    expect(closed).toMatchObject({ code: 1001, reason: 'session_expired' });
    const errors = c.events.filter((e) => e.type === 'error').map((e) => (e.error as { code: string }).code);
    // Only the upstream's own error: the relay adds no upstream_connection_lost of its own.
    expect(errors).toEqual(['session_expired']);
    const ledger = r.relay.services.metering.ledger;
    const [totals] = await until(() => ledger.usage({ user: 'ex' }), (rows) => rows[0]?.responses === 1);
    expect(totals).toMatchObject({ responses: 1, estimated_responses: 0, output_audio_tokens: sim.stats.usageTotals.output_audio_tokens });
    expect(await ledger.find('simulator', done.response.id)).not.toBeNull();
  });
});
