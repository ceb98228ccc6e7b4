import path from 'node:path';
import { costOf } from '../../src/metering/cost';
import { formatUsd } from '../../src/metering/money';
import { PriceBook, type ModelPrice } from '../../src/metering/prices';
import { emptyUsage, normaliseUsage, type TokenUsage } from '../../src/metering/usage';
import { REFERENCE_USAGE } from './fixtures/usage';

/*
 * Every expected cost is worked by hand from the published USD-per-1M prices. A price of $P per
 * 1M tokens is P × 1000 nano-dollars per token, so N tokens cost N × P × 1000 nanos.
 * The reference usage (§4): text in 294 of which 180 cached, audio in 95 of which 88 cached,
 * text out 10, audio out 523.
 */
const book = PriceBook.load(path.resolve(__dirname, '../../config/prices.json'));
const NOW = new Date('2026-06-01T00:00:00Z');
const reference = normaliseUsage(REFERENCE_USAGE) as TokenUsage;

function price(provider: string, model: string): ModelPrice {
  const p = book.priceFor(provider, model, NOW);
  if (!p) throw new Error(`no price for ${provider}/${model}`);
  return p;
}

describe('costOf, reference usage', () => {
  it('gpt-4o-realtime-preview-2024-12-17 (5 / 2.50 / 20, audio 40 / 2.50 / 80)', () => {
    const c = costOf(reference, price('openai', 'gpt-4o-realtime-preview-2024-12-17'));
    expect(c.breakdown).toEqual({
      text_in: (294n - 180n) * 5000n, //     114 × 5000   =    570_000
      text_cached_in: 180n * 2500n, //       180 × 2500   =    450_000
      text_out: 10n * 20000n, //              10 × 20000  =    200_000
      audio_in: (95n - 88n) * 40000n, //       7 × 40000  =    280_000
      audio_cached_in: 88n * 2500n, //        88 × 2500   =    220_000
      audio_out: 523n * 80000n, //           523 × 80000  = 41_840_000
      image_in: 0n,
      image_cached_in: 0n,
      duration: 0n,
    });
    // 570_000 + 450_000 + 200_000 + 280_000 + 220_000 + 41_840_000
    expect(c.nanos).toBe(43_560_000n);
    expect(formatUsd(c.nanos)).toBe('0.043560000');
    expect(c.unpriced).toEqual([]);
  });

  it('gpt-4o-realtime-preview-2024-10-01, the product sheet (audio 100 / 20 / 200)', () => {
    const c = costOf(reference, price('openai', 'gpt-4o-realtime-preview-2024-10-01'));
    // text as above: 570_000 + 450_000 + 200_000 = 1_220_000
    // audio: 7 × 100_000 = 700_000; 88 × 20_000 = 1_760_000; 523 × 200_000 = 104_600_000
    expect(c.nanos).toBe(1_220_000n + 700_000n + 1_760_000n + 104_600_000n);
    expect(formatUsd(c.nanos)).toBe('0.108280000');
  });

  it('gpt-4o-mini-realtime-preview-2024-12-17 (0.60 / 0.30 / 2.40, audio 10 / 0.30 / 20)', () => {
    const c = costOf(reference, price('openai', 'gpt-4o-mini-realtime-preview-2024-12-17'));
    // 114 × 600 = 68_400; 180 × 300 = 54_000; 10 × 2_400 = 24_000
    // 7 × 10_000 = 70_000; 88 × 300 = 26_400; 523 × 20_000 = 10_460_000
    expect(c.nanos).toBe(68_400n + 54_000n + 24_000n + 70_000n + 26_400n + 10_460_000n);
    expect(formatUsd(c.nanos)).toBe('0.010702800');
  });

  it('CometAPI flat rate: cached billed at the input price', () => {
    const c = costOf(reference, price('cometapi', 'gpt-4o-realtime-preview-2025-06-03'));
    // all 389 input tokens at $2 (cached or not) + 533 output tokens at $8:
    // 389 × 2000 = 778_000; 533 × 8000 = 4_264_000
    expect(c.nanos).toBe(389n * 2000n + 533n * 8000n);
    expect(c.nanos).toBe(5_042_000n);
    expect(c.breakdown.text_cached_in).toBe(180n * 2000n);
  });
});

describe('costOf, GA models', () => {
  it('gpt-realtime with images (4 / 0.40 / 16, audio 32 / 0.40 / 64, image 5 / 0.50)', () => {
    const usage: TokenUsage = { ...reference, input_image: 100, cached_image: 40 };
    const c = costOf(usage, price('openai', 'gpt-realtime-2025-08-28'));
    expect(c.breakdown).toEqual({
      text_in: 114n * 4000n, //           456_000
      text_cached_in: 180n * 400n, //      72_000
      text_out: 10n * 16000n, //          160_000
      audio_in: 7n * 32000n, //           224_000
      audio_cached_in: 88n * 400n, //      35_200
      audio_out: 523n * 64000n, //     33_472_000
      image_in: 60n * 5000n, //           300_000
      image_cached_in: 40n * 500n, //      20_000
      duration: 0n,
    });
    expect(c.nanos).toBe(34_739_200n);
    expect(formatUsd(c.nanos)).toBe('0.034739200');
  });

  it('gpt-realtime-2 bills reasoning once, inside text out at $24', () => {
    const usage = normaliseUsage({
      input_tokens: 1000,
      output_tokens: 500,
      input_token_details: { text_tokens: 1000, audio_tokens: 0, image_tokens: 0, cached_tokens: 0 },
      // 400 of the 500 text tokens are reasoning: they are not added again.
      output_token_details: { text_tokens: 500, audio_tokens: 0, reasoning_tokens: 400 },
    }) as TokenUsage;
    const c = costOf(usage, price('openai', 'gpt-realtime-2'));
    // 1000 × 4000 = 4_000_000; 500 × 24_000 = 12_000_000
    expect(c.nanos).toBe(16_000_000n);
  });

  it('gpt-realtime-mini text cache at $0.06', () => {
    const usage: TokenUsage = { ...emptyUsage(), input_text: 10_000, cached_text: 9_000, output_text: 100 };
    // 1000 × 600 = 600_000; 9000 × 60 = 540_000; 100 × 2400 = 240_000
    expect(costOf(usage, price('openai', 'gpt-realtime-mini')).nanos).toBe(600_000n + 540_000n + 240_000n);
  });

  it('one token costs one price unit, with no rounding anywhere', () => {
    const one: TokenUsage = { ...emptyUsage(), cached_audio: 1, input_audio: 1 };
    // $0.30 per 1M = 300 nanos per token
    expect(costOf(one, price('openai', 'gpt-realtime-mini')).nanos).toBe(300n);
  });
});

describe('costOf, transcription', () => {
  it('gpt-4o-transcribe tokens (text 2.50 in / 10 out, audio 6 in)', () => {
    const usage: TokenUsage = { ...emptyUsage(), input_audio: 1200, input_text: 30, output_text: 85 };
    // 1200 × 6000 = 7_200_000; 30 × 2500 = 75_000; 85 × 10_000 = 850_000
    expect(costOf(usage, price('openai', 'gpt-4o-transcribe')).nanos).toBe(8_125_000n);
  });

  it('gpt-realtime-whisper by the minute, half up to the nano-dollar', () => {
    const usage: TokenUsage = { ...emptyUsage(), duration_ms: 7250 };
    // 7.25 s × $0.017/60 s = 7250 × 17_000_000 / 60_000 = 2_054_166.67 → 2_054_167
    const c = costOf(usage, price('openai', 'gpt-realtime-whisper'));
    expect(c.breakdown.duration).toBe(2_054_167n);
    expect(c.nanos).toBe(2_054_167n);
  });

  it('whisper-1 by the minute', () => {
    // 3.3 s × $0.006/60 s = 3300 × 6_000_000 / 60_000 = 330_000 exactly
    expect(costOf({ ...emptyUsage(), duration_ms: 3300 }, price('openai', 'whisper-1')).nanos).toBe(330_000n);
  });

  it('reports usage the entry cannot price', () => {
    const c = costOf({ ...emptyUsage(), duration_ms: 1000, input_image: 5 }, price('openai', 'gpt-4o-realtime-preview-2025-06-03'));
    expect(c.nanos).toBe(0n);
    expect(c.unpriced.sort()).toEqual(['duration', 'image_in']);
  });
});
