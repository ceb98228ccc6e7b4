import path from 'node:path';
import { costOf } from '../../src/metering/cost';
import { PriceBook, PriceBookError } from '../../src/metering/prices';
import { emptyUsage } from '../../src/metering/usage';

const SHIPPED = path.resolve(__dirname, '../../config/prices.json');
const TWO_VERSIONS = path.resolve(__dirname, 'fixtures/prices-two-versions.json');
const NOW = new Date('2026-06-01T00:00:00Z');

describe('shipped price table', () => {
  const book = PriceBook.load(SHIPPED);

  it('loads and carries its version', () => {
    expect(book.version).toMatch(/\S/);
    expect(book.providers().sort()).toEqual(['azure', 'cometapi', 'compatible', 'openai', 'simulator']);
  });

  it.each([
    // model, text_in, text_cached_in, text_out, audio_in, audio_cached_in, audio_out (USD/1M → nanos/token = ×1000)
    ['gpt-4o-realtime-preview-2024-10-01', 5000n, 2500n, 20000n, 100000n, 20000n, 200000n],
    ['gpt-4o-realtime-preview-2024-12-17', 5000n, 2500n, 20000n, 40000n, 2500n, 80000n],
    ['gpt-4o-realtime-preview-2025-06-03', 5000n, 2500n, 20000n, 40000n, 2500n, 80000n],
    ['gpt-4o-mini-realtime-preview-2024-12-17', 600n, 300n, 2400n, 10000n, 300n, 20000n],
    ['gpt-realtime', 4000n, 400n, 16000n, 32000n, 400n, 64000n],
    ['gpt-realtime-1.5', 4000n, 400n, 16000n, 32000n, 400n, 64000n],
    ['gpt-realtime-2', 4000n, 400n, 24000n, 32000n, 400n, 64000n],
    ['gpt-realtime-mini', 600n, 60n, 2400n, 10000n, 300n, 20000n],
    ['gpt-realtime-2.1-mini', 600n, 60n, 2400n, 10000n, 300n, 20000n],
  ])('openai %s matches the published table', (model, ti, tc, to, ai, ac, ao) => {
    const p = book.priceFor('openai', model, NOW);
    expect(p?.tokens).toMatchObject({ text_in: ti, text_cached_in: tc, text_out: to, audio_in: ai, audio_cached_in: ac, audio_out: ao });
  });

  it('prices images for the GA models only', () => {
    expect(book.priceFor('openai', 'gpt-realtime', NOW)?.tokens).toMatchObject({ image_in: 5000n, image_cached_in: 500n });
    expect(book.priceFor('openai', 'gpt-realtime-mini', NOW)?.tokens).toMatchObject({ image_in: 800n, image_cached_in: 80n });
    expect(book.priceFor('openai', 'gpt-4o-realtime-preview-2025-06-03', NOW)?.tokens?.image_in).toBeUndefined();
  });

  it('bills CometAPI at its flat rate, cached at the input price', () => {
    const p = book.priceFor('cometapi', 'gpt-4o-realtime-preview-2025-06-03', NOW);
    expect(p?.tokens).toEqual({ text_in: 2000n, text_cached_in: 2000n, text_out: 8000n, audio_in: 2000n, audio_cached_in: 2000n, audio_out: 8000n });
  });

  it('prices transcription by tokens or by the minute', () => {
    expect(book.priceFor('openai', 'gpt-realtime-whisper', NOW)?.perMinuteNanos).toBe(17_000_000n);
    expect(book.priceFor('openai', 'whisper-1', NOW)?.perMinuteNanos).toBe(6_000_000n);
    expect(book.priceFor('openai', 'gpt-4o-transcribe', NOW)?.tokens).toEqual({ text_in: 2500n, text_out: 10000n, audio_in: 6000n });
    expect(book.priceFor('openai', 'gpt-4o-mini-transcribe', NOW)?.tokens).toEqual({ text_in: 1250n, text_out: 5000n, audio_in: 3000n });
  });

  it('gives azure, compatible and simulator the openai prices', () => {
    const openai = book.priceFor('openai', 'gpt-realtime', NOW);
    for (const provider of ['azure', 'compatible', 'simulator']) expect(book.priceFor(provider, 'gpt-realtime', NOW)).toBe(openai);
  });

  it('resolves snapshots and aliases', () => {
    expect(book.priceFor('openai', 'gpt-realtime-2025-08-28', NOW)?.model).toBe('gpt-realtime');
    expect(book.priceFor('openai', 'gpt-realtime-mini-2025-10-06', NOW)?.model).toBe('gpt-realtime-mini');
    expect(book.priceFor('openai', 'gpt-4o-realtime-preview-2024-12-17', NOW)?.model).toBe('gpt-4o-realtime-preview-2024-12-17');
    // The undated alias takes the newest snapshot priced at that moment.
    expect(book.priceFor('openai', 'gpt-4o-realtime-preview', NOW)?.model).toBe('gpt-4o-realtime-preview-2025-06-03');
    expect(book.priceFor('openai', 'gpt-4o-realtime-preview', new Date('2024-11-01T00:00:00Z'))?.model).toBe('gpt-4o-realtime-preview-2024-10-01');
    expect(book.priceFor('openai', 'gpt-4o-mini-realtime-preview', NOW)?.model).toBe('gpt-4o-mini-realtime-preview-2024-12-17');
    // An unknown later snapshot of a family priced only by snapshots takes the newest earlier one.
    expect(book.priceFor('openai', 'gpt-4o-realtime-preview-2025-09-01', NOW)?.model).toBe('gpt-4o-realtime-preview-2025-06-03');
  });

  it('answers null for what it does not know', () => {
    expect(book.priceFor('openai', 'gpt-realtime-foo', NOW)).toBeNull();
    expect(book.priceFor('openai', 'my-azure-deployment', NOW)).toBeNull();
    expect(book.priceFor('nobody', 'gpt-realtime', NOW)).toBeNull();
    expect(book.priceFor('cometapi', 'whisper-1', NOW)).toBeNull();
    // No price existed before the model's first entry.
    expect(book.priceFor('openai', 'gpt-realtime', new Date('2025-08-27T23:59:59Z'))).toBeNull();
    // An older snapshot than any priced one has nothing to fall back to.
    expect(book.priceFor('openai', 'gpt-4o-realtime-preview-2024-01-01', NOW)).toBeNull();
  });
});

describe('a price change', () => {
  const book = PriceBook.load(TWO_VERSIONS);
  // 1000 text in + 1000 audio out, billed just before and just after the change on 2026-01-01.
  const usage = { ...emptyUsage(), input_text: 1000, output_audio: 1000 };

  it('bills the dated snapshot at the price in force at that moment', () => {
    const before = book.priceFor('openai', 'gpt-realtime-2025-08-28', new Date('2025-12-31T23:59:59.999Z'));
    const after = book.priceFor('openai', 'gpt-realtime-2025-08-28', new Date('2026-01-01T00:00:00.000Z'));
    expect(before?.effectiveFrom.toISOString()).toBe('2025-08-28T00:00:00.000Z');
    expect(after?.effectiveFrom.toISOString()).toBe('2026-01-01T00:00:00.000Z');
    expect(after?.version).toBe('test-2');
    // before: 1000 × $4/1M + 1000 × $64/1M = 1000×4000 + 1000×64000 = 4_000_000 + 64_000_000 nanos
    expect(costOf(usage, before!).nanos).toBe(1000n * 4000n + 1000n * 64000n);
    expect(costOf(usage, before!).nanos).toBe(68_000_000n);
    // after: 1000 × $3.50/1M + 1000 × $48/1M = 3_500_000 + 48_000_000 nanos
    expect(costOf(usage, after!).nanos).toBe(1000n * 3500n + 1000n * 48000n);
    expect(costOf(usage, after!).nanos).toBe(51_500_000n);
  });

  it('prices the undated family name the same way', () => {
    expect(book.priceFor('simulator', 'gpt-realtime', new Date('2025-12-31T12:00:00Z'))?.tokens?.audio_out).toBe(64000n);
    expect(book.priceFor('simulator', 'gpt-realtime', new Date('2026-01-02T00:00:00Z'))?.tokens?.audio_out).toBe(48000n);
  });
});

describe('price table validation', () => {
  const entry = { model: 'm', effective_from: '2025-01-01', per_1m_tokens: { text_in: 1 } };
  const table = (e: object, extra: object = {}): object => ({ version: 'v', providers: { openai: { models: [e] }, ...extra } });

  it('accepts a minimal table', () => {
    expect(PriceBook.fromJson(table(entry)).priceFor('openai', 'm', NOW)?.tokens).toEqual({ text_in: 1000n });
  });

  it.each([
    ['a 4th decimal', table({ ...entry, per_1m_tokens: { text_in: 0.0001 } }), /more than 3 decimals/],
    ['a negative price', table({ ...entry, per_1m_tokens: { text_in: -1 } }), /must be >= 0/],
    ['an unknown category', table({ ...entry, per_1m_tokens: { text_inn: 1 } }), /additional properties/],
    ['no price at all', table({ model: 'm', effective_from: '2025-01-01' }), /per_1m_tokens|per_minute/],
    ['a bad date', table({ ...entry, effective_from: '01/02/2025' }), /effective_from|pattern/],
    ['an impossible date', table({ ...entry, effective_from: '2025-13-45' }), /not a date/],
    ['a rolled-over date', table({ ...entry, effective_from: '2025-02-30' }), /not a date/],
    ['no version', { providers: { openai: { models: [entry] } } }, /version/],
    ['a same_as to nowhere', table(entry, { azure: { same_as: 'nobody' } }), /same_as/],
    ['two entries on one date', { version: 'v', providers: { openai: { models: [entry, entry] } } }, /second m entry/],
  ])('refuses %s', (_what, doc, message) => {
    expect(() => PriceBook.fromJson(doc)).toThrow(PriceBookError);
    expect(() => PriceBook.fromJson(doc)).toThrow(message);
  });

  it('names the file it cannot read', () => {
    expect(() => PriceBook.load('/nonexistent/prices.json')).toThrow(/\/nonexistent\/prices.json/);
  });
});
