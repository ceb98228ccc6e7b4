import { durationCostNanos } from './money';
import type { ModelPrice, TokenPriceKey } from './prices';
import type { TokenUsage } from './usage';

export interface CostBreakdown {
  text_in: bigint;
  text_cached_in: bigint;
  text_out: bigint;
  audio_in: bigint;
  audio_cached_in: bigint;
  audio_out: bigint;
  image_in: bigint;
  image_cached_in: bigint;
  duration: bigint;
}

export interface Cost {
  nanos: bigint;
  breakdown: CostBreakdown;
  /** Categories with usage but no price in the entry; they were billed 0 and deserve a warning. */
  unpriced: string[];
}

/**
 * Bills a usage record at a price entry, all in integer nano-dollars (see money.ts):
 * uncached input (input − cached) at *_in, cached at *_cached_in, output at *_out, and
 * duration at the per-minute price. An entry without a cached price bills cached tokens at the
 * input price (no discount, as CometAPI does); any other missing price bills 0 and is reported
 * in `unpriced`.
 */
export function costOf(usage: TokenUsage, price: ModelPrice): Cost {
  const unpriced: string[] = [];
  const tokens = price.tokens ?? {};

  const bill = (count: number, key: TokenPriceKey, fallback?: TokenPriceKey): bigint => {
    if (count <= 0) return 0n;
    const p = tokens[key] ?? (fallback === undefined ? undefined : tokens[fallback]);
    if (p === undefined) {
      unpriced.push(key);
      return 0n;
    }
    return BigInt(count) * p;
  };

  const cachedText = Math.min(usage.cached_text, usage.input_text);
  const cachedAudio = Math.min(usage.cached_audio, usage.input_audio);
  const cachedImage = Math.min(usage.cached_image, usage.input_image);

  const breakdown: CostBreakdown = {
    text_in: bill(usage.input_text - cachedText, 'text_in'),
    text_cached_in: bill(cachedText, 'text_cached_in', 'text_in'),
    text_out: bill(usage.output_text, 'text_out'),
    audio_in: bill(usage.input_audio - cachedAudio, 'audio_in'),
    audio_cached_in: bill(cachedAudio, 'audio_cached_in', 'audio_in'),
    audio_out: bill(usage.output_audio, 'audio_out'),
    image_in: bill(usage.input_image - cachedImage, 'image_in'),
    image_cached_in: bill(cachedImage, 'image_cached_in', 'image_in'),
    duration: 0n,
  };
  if (usage.duration_ms > 0) {
    if (price.perMinuteNanos === null) unpriced.push('duration');
    else breakdown.duration = durationCostNanos(usage.duration_ms, price.perMinuteNanos);
  }

  let nanos = 0n;
  for (const v of Object.values(breakdown)) nanos += v;
  return { nanos, breakdown, unpriced };
}
