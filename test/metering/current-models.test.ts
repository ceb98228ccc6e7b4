import path from 'node:path';
import { costOf } from '../../src/metering/cost';
import { PriceBook } from '../../src/metering/prices';
import { normaliseUsage } from '../../src/metering/usage';

const SHIPPED = path.resolve(__dirname, '../../config/prices.json');
const NOW = new Date('2026-12-01T00:00:00Z');

/** One response of a reasoning model: 30 of its 130 text output tokens are reasoning. */
const RAW_USAGE = {
  total_tokens: 2150,
  input_tokens: 1000,
  output_tokens: 1150,
  input_token_details: {
    text_tokens: 600,
    audio_tokens: 300,
    image_tokens: 100,
    cached_tokens: 450,
    cached_tokens_details: { text_tokens: 400, audio_tokens: 40, image_tokens: 10 },
  },
  output_token_details: { text_tokens: 130, audio_tokens: 1020, reasoning_tokens: 30 },
};

describe('current OpenAI realtime models (2026-12 price table)', () => {
  const book = PriceBook.load(SHIPPED);
  const usage = normaliseUsage(RAW_USAGE)!;

  it('reads reasoning tokens as a part of text output, never as extra output', () => {
    expect(usage.output_text).toBe(130);
    expect(usage.output_reasoning).toBe(30);
    // More reasoning than text reported (a malformed report) is capped at the text count.
    const bad = normaliseUsage({ ...RAW_USAGE, output_token_details: { text_tokens: 5, audio_tokens: 0, reasoning_tokens: 50 } })!;
    expect(bad.output_reasoning).toBe(5);
  });

  it('gpt-realtime-2.1: text 4 / 0.40 / 24, audio 32 / 0.40 / 64, image 5 / 0.50 USD per 1M', () => {
    const price = book.priceFor('openai', 'gpt-realtime-2.1', NOW)!;
    expect(price.model).toBe('gpt-realtime-2.1');
    // nano-dollars per token = USD per 1M × 1000:
    //   text   (600 − 400) × 4000 = 800,000      cached text  400 × 400 = 160,000
    //   audio  (300 − 40) × 32000 = 8,320,000    cached audio  40 × 400 =  16,000
    //   image  (100 − 10) × 5000  = 450,000      cached image  10 × 500 =   5,000
    //   text out 130 × 24000 = 3,120,000 (the 30 reasoning tokens are inside the 130: billed once)
    //   audio out 1020 × 64000 = 65,280,000
    //   total 78,151,000 nano-dollars = $0.078151
    const cost = costOf(usage, price);
    expect(cost.breakdown).toMatchObject({ text_in: 800_000n, text_cached_in: 160_000n, audio_in: 8_320_000n, audio_cached_in: 16_000n, image_in: 450_000n, image_cached_in: 5_000n, text_out: 3_120_000n, audio_out: 65_280_000n });
    expect(cost.nanos).toBe(78_151_000n);
    expect(cost.unpriced).toEqual([]);
  });

  it('gpt-realtime-2.1-mini: text 0.60 / 0.06 / 2.40, audio 10 / 0.30 / 20, image 0.80 / 0.08 USD per 1M', () => {
    const price = book.priceFor('openai', 'gpt-realtime-2.1-mini', NOW)!;
    //   text 200 × 600 = 120,000       cached text 400 × 60 = 24,000
    //   audio 260 × 10000 = 2,600,000  cached audio 40 × 300 = 12,000
    //   image 90 × 800 = 72,000        cached image 10 × 80 = 800
    //   text out 130 × 2400 = 312,000 (reasoning inside)   audio out 1020 × 20000 = 20,400,000
    //   total 23,540,800 nano-dollars
    const cost = costOf(usage, price);
    expect(cost.nanos).toBe(23_540_800n);
  });

  it('gpt-realtime-2 (reasoning, already priced) bills reasoning once too: text out 130 × 24000', () => {
    const cost = costOf(usage, book.priceFor('openai', 'gpt-realtime-2', NOW)!);
    expect(cost.breakdown.text_out).toBe(3_120_000n);
    expect(cost.nanos).toBe(78_151_000n);
  });

  it('the simulator, azure and compatible bill the new models at OpenAI list prices', () => {
    for (const p of ['simulator', 'azure', 'compatible']) expect(book.priceFor(p, 'gpt-realtime-2.1', NOW)?.tokens?.text_out).toBe(24_000n);
  });
});
