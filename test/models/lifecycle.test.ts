import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { openModelPolicy } from '../../src/models';
import { ModelLifecycle } from '../../src/models/lifecycle';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { refusedUpgrade, TestClient } from '../support/ws-client';
import { until } from '../support/until';

/** A lifecycle for the simulator (it has none by default): one model shut down, one deprecated. */
const LIFECYCLE = {
  providers: {
    simulator: {
      models: [
        { model: 'gpt-realtime', shutdown_date: '2026-01-20', replacement: 'gpt-realtime-2.1' },
        { model: 'gpt-realtime-mini', shutdown_date: '2099-01-20', replacement: 'gpt-realtime-2.1-mini' },
      ],
    },
  },
};

describe('model lifecycle', () => {
  let dir: string;
  let file: string;
  let r: RelayInstance | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'lifecycle-'));
    file = path.join(dir, 'lifecycle.json');
    writeFileSync(file, JSON.stringify(LIFECYCLE));
  });
  afterEach(async () => {
    await r?.close();
    r = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('the shipped file loads and dates OpenAI models as the sources say', () => {
    const l = ModelLifecycle.load(path.resolve(__dirname, '../../config/model-lifecycle.json'));
    const at = new Date('2026-12-01T00:00:00Z');
    expect(l.stateOf('openai', 'gpt-4o-realtime-preview-2025-06-03', at)).toMatchObject({ state: 'shutdown', replacement: 'gpt-realtime' });
    expect(l.stateOf('openai', 'gpt-realtime', at)).toMatchObject({ state: 'deprecated', replacement: 'gpt-realtime-2.1', shutdown: new Date('2027-01-20T00:00:00Z') });
    expect(l.stateOf('openai', 'gpt-realtime', new Date('2027-01-20T00:00:00Z')).state).toBe('shutdown');
    expect(l.stateOf('openai', 'gpt-realtime-2.1', at).state).toBe('active');
    // CometAPI still serves the preview snapshot.
    expect(l.stateOf('cometapi', 'gpt-4o-realtime-preview-2025-06-03', at).state).toBe('active');
  });

  it('warns at start about each deprecated or shut-down model and counts connections to deprecated ones', async () => {
    const lines: Array<{ msg: string; model: string }> = [];
    const logger = pino({ level: 'warn' }, { write: (l: string) => lines.push(JSON.parse(l) as { msg: string; model: string }) });
    const registry = new Registry();
    const policy = openModelPolicy({ file, provider: 'simulator', aliases: {}, logger, registry, now: () => new Date('2026-12-01T00:00:00Z') });
    expect(lines.map((l) => l.model)).toEqual(['gpt-realtime', 'gpt-realtime-mini']);
    expect(lines[0].msg).toMatch(/shut down upstream; sessions asking for it are refused/);
    expect(lines[1].msg).toMatch(/deprecated upstream and shuts down on 2099-01-20/);
    policy.resolve('gpt-realtime-mini');
    policy.resolve('gpt-realtime-mini');
    policy.resolve('gpt-realtime-2');
    expect(await registry.getSingleMetricAsString('realtime_relay_deprecated_model_connections_total')).toContain('realtime_relay_deprecated_model_connections_total{provider="simulator",model="gpt-realtime-mini"} 2');
  });

  it('refuses a model past its shutdown date with a clear error, before dialling upstream', async () => {
    r = await startRelay({ MODEL_LIFECYCLE_FILE: file });
    const key = await r.createKey('ann', ['realtime']);
    // Refused before the upgrade (HTTP 400, OpenAI-shaped), like any model this relay cannot serve.
    const refused = await refusedUpgrade(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject({
      error: { type: 'invalid_request_error', code: 'model_shut_down', param: 'model', message: expect.stringMatching(/^Model gpt-realtime was shut down by the provider on 2026-01-20\. Use gpt-realtime-2\.1 instead\./) },
    });
    expect(r.relay.services.simulator!.stats.connectionsOpened).toBe(0);
    // A deprecated model is still served.
    const d = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime-mini`, { headers: { authorization: `Bearer ${key}` } });
    await d.waitFor('session.created');
    d.close();
    await d.closed;
  });

  it('with MODEL_ALIASES serves the replacement, bills it at its own price, and records both names', async () => {
    r = await startRelay({ MODEL_LIFECYCLE_FILE: file, MODEL_ALIASES: 'gpt-realtime=gpt-realtime-2.1' });
    const key = await r.createKey('al', ['realtime', 'usage']);
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    const created = (await c.waitFor('session.created')) as { session: { model: string } };
    expect(created.session.model).toBe('gpt-realtime-2.1');
    expect(r.relay.services.simulator!.connections()[0].model).toBe('gpt-realtime-2.1');
    c.send({ type: 'response.create' });
    const done = (await c.waitFor('response.done')) as { response: { id: string } };
    c.close();
    await c.closed;
    const row = (await until(() => r!.relay.services.metering.ledger.find('simulator', done.response.id), (x) => x !== null))!;
    expect(row.model).toBe('gpt-realtime-2.1');
    expect(row.requestedModel).toBe('gpt-realtime');
    expect(row.priceModel).toBe('gpt-realtime-2.1');
    // gpt-realtime-2.1 bills text output at 24 USD/1M (gpt-realtime: 16): 24000 nano-dollars per token.
    const u = row.usage;
    expect(u.output_text).toBeGreaterThan(0);
    const expected =
      BigInt(u.input_text - u.cached_text) * 4000n + BigInt(u.cached_text) * 400n + BigInt(u.output_text) * 24000n +
      BigInt(u.input_audio - u.cached_audio) * 32000n + BigInt(u.cached_audio) * 400n + BigInt(u.output_audio) * 64000n;
    expect(row.costNanos).toBe(expected);
  });
});
