import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cli, scratch } from './support';

const SHIPPED = path.resolve(__dirname, '..', '..', 'config', 'prices.json');

interface PricesJson {
  file: string;
  valid: boolean;
  version: string;
  at: string;
  prices: { provider: string; model: string; priced_as: string; effective_from: string; per_1m_tokens: Record<string, string> | null; per_minute: string | null }[];
  same_as: Record<string, string>;
  not_yet_effective: { provider: string; model: string; from: string }[];
  warnings: string[];
}

describe('realtime-relay prices check', () => {
  const s = scratch();
  afterAll(() => s.cleanup());

  it('validates the shipped price file and prints today\'s table', async () => {
    const r = await cli(['prices', 'check', '--file', SHIPPED], s.env);
    expect(r).toMatchObject({ code: 0, err: '' });
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/prices\.json: valid, version \S+$/);
    const header = lines.find((l) => l.startsWith('PROVIDER'));
    expect(header).toMatch(/^PROVIDER\s+MODEL\s+EFFECTIVE_FROM\s+TEXT_IN\s+TEXT_CACHED_IN\s+TEXT_OUT\s+AUDIO_IN\s+AUDIO_CACHED_IN\s+AUDIO_OUT\s+IMAGE_IN\s+IMAGE_CACHED_IN\s+PER_MINUTE$/);
    expect(r.out).toMatch(/^openai\s+gpt-realtime\s+2025-08-28\s+4\s+0\.4\s+16\s+32\s+0\.4\s+64\s+5\s+0\.5\s+-$/m);
    expect(r.out).toMatch(/^openai\s+whisper-1\s+\S+(\s+-){8}\s+0\.006$/m);
    expect(r.out).toMatch(/^cometapi\s+gpt-realtime\s/m);
    expect(r.out).toMatch(/^simulator: same prices as openai$/m);
  });

  it('reads PRICES_FILE from the configuration when no --file is given', async () => {
    const r = await cli(['prices', 'check', '--json'], { ...s.env, PRICES_FILE: SHIPPED });
    expect(r).toMatchObject({ code: 0, err: '' });
    const body = JSON.parse(r.out) as PricesJson;
    expect(body).toMatchObject({ file: SHIPPED, valid: true, warnings: [] });
    expect(body.prices.find((p) => p.provider === 'openai' && p.model === 'gpt-realtime')?.per_1m_tokens).toMatchObject({ text_in: '4', audio_out: '64' });
  });

  it('resolves prices at --date as the relay bills them', async () => {
    const r = await cli(['prices', 'check', '--file', SHIPPED, '--date', '2024-11-01', '--json'], s.env);
    const body = JSON.parse(r.out) as PricesJson;
    expect(body.at).toBe('2024-11-01T00:00:00.000Z');
    expect(body.not_yet_effective).toContainEqual({ provider: 'openai', model: 'gpt-realtime', from: '2025-08-28' });
    // A snapshot not yet priced is billed at its family's newest earlier snapshot.
    expect(body.prices).toContainEqual(
      expect.objectContaining({ provider: 'openai', model: 'gpt-4o-realtime-preview-2024-12-17', priced_as: 'gpt-4o-realtime-preview-2024-10-01' }),
    );
  });

  it('warns when the configured default model has no price', async () => {
    const r = await cli(['prices', 'check'], { ...s.env, PRICES_FILE: SHIPPED, DEFAULT_MODEL: 'no-such-model' });
    expect(r.code).toBe(0);
    expect(r.err).toBe('warning: model no-such-model has no price for provider simulator: the relay will refuse sessions on it\n');
  });

  it.each([
    ['a date February lacks', { version: 'x', providers: { openai: { models: [{ model: 'm', effective_from: '2025-02-30', per_1m_tokens: { text_in: 1 } }] } } }, /effective_from: not a date/],
    ['a fourth decimal', { version: 'x', providers: { openai: { models: [{ model: 'm', effective_from: '2025-02-03', per_1m_tokens: { text_in: 1.0001 } }] } } }, /more than 3 decimals/],
    ['an unknown price key', { version: 'x', providers: { openai: { models: [{ model: 'm', effective_from: '2025-02-03', per_1m_tokens: { txt_in: 1 } }] } } }, /per_1m_tokens must NOT have additional properties/],
    ['same_as a provider without models', { version: 'x', providers: { azure: { same_as: 'openai' } } }, /same_as names openai/],
  ])('refuses a price file with %s (exit 1)', async (_what, doc, message) => {
    const file = path.join(s.dir, 'broken.json');
    writeFileSync(file, JSON.stringify(doc));
    const r = await cli(['prices', 'check', '--file', file], s.env);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/^realtime-relay prices check: invalid price file: /);
    expect(r.err).toMatch(message);
  });

  it('refuses a file that is not JSON or does not exist (exit 1)', async () => {
    const file = path.join(s.dir, 'truncated.json');
    writeFileSync(file, '{"version": "x", "providers": {');
    expect(await cli(['prices', 'check', '--file', file], s.env)).toMatchObject({ code: 1, err: expect.stringMatching(/cannot read price file/) });
    expect(await cli(['prices', 'check', '--file', path.join(s.dir, 'missing.json')], s.env)).toMatchObject({ code: 1, err: expect.stringMatching(/ENOENT/) });
  });

  it.each([
    [['prices', 'check', '--date', '2025-13-01'], /--date must be a date/],
    [['prices', 'check', '--file'], /argument missing/],
    [['prices', 'verify'], /unknown subcommand 'verify'/],
  ])('%j is a usage error (exit 2)', async (argv, message) => {
    const r = await cli(argv, s.env);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
  });
});

describe('realtime-relay prices check: model lifecycle', () => {
  const s = scratch();
  afterAll(() => s.cleanup());

  it('reports deprecated and past-shutdown models, their replacements and whether they are priced', async () => {
    const r = await cli(['prices', 'check', '--file', SHIPPED, '--date', '2026-12-01'], s.env);
    expect(r).toMatchObject({ code: 0 });
    expect(r.out).toMatch(/^openai gpt-realtime: deprecated, shuts down 2027-01-20; replacement gpt-realtime-2\.1$/m);
    expect(r.out).toMatch(/^openai gpt-4o-realtime-preview-2025-06-03: PAST SHUTDOWN since 2026-05-07; replacement gpt-realtime; sessions refused$/m);
    // A listed model, or a replacement, with no price is flagged.
    const file = path.join(tmpdir(), `lifecycle-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ providers: { openai: { models: [{ model: 'gpt-nothing', shutdown_date: '2027-01-01', replacement: 'gpt-nothing-2' }] } } }));
    const u = await cli(['prices', 'check', '--file', SHIPPED, '--lifecycle', file, '--date', '2026-12-01'], s.env);
    expect(u.out).toMatch(/^openai gpt-nothing: deprecated, shuts down 2027-01-01 \(UNPRICED\); replacement gpt-nothing-2 \(UNPRICED\)$/m);
    rmSync(file, { force: true });
  });

  it('warns about a served model past shutdown, and names the alias that serves it instead', async () => {
    const env = { ...s.env, UPSTREAM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test', DEFAULT_MODEL: 'gpt-4o-realtime-preview-2025-06-03' };
    const refused = await cli(['prices', 'check', '--json', '--date', '2026-12-01'], env);
    const body = JSON.parse(refused.out) as { warnings: string[]; lifecycle: Array<{ model: string; state: string; alias: string | null }> };
    expect(body.warnings).toEqual([expect.stringMatching(/gpt-4o-realtime-preview-2025-06-03 is past its shutdown date \(2026-05-07\).*will refuse sessions/)]);
    const aliased = await cli(['prices', 'check', '--json', '--date', '2026-12-01'], { ...env, MODEL_ALIASES: 'gpt-4o-realtime-preview-2025-06-03=gpt-realtime-2.1' });
    const b2 = JSON.parse(aliased.out) as typeof body;
    expect(b2.warnings).toEqual([]);
    expect(b2.lifecycle.find((l) => l.model === 'gpt-4o-realtime-preview-2025-06-03')).toMatchObject({ state: 'shutdown', alias: 'gpt-realtime-2.1' });
  });
});
