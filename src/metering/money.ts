/**
 * Money is an integer count of nano-dollars (1e-9 USD) held in a bigint, so sums never lose a
 * digit and the ledger stores what was billed exactly.
 *
 * Why token prices are exact: a price is configured in USD per 1M tokens with at most 3
 * decimals, so `price × 1000` is an integer number of milli-dollars per 1M tokens, and
 *   1 milli-dollar / 1M tokens = 1e-3 / 1e6 USD per token = 1e-9 USD per token = 1 nano-dollar per token.
 * Hence `nanosPerToken = price × 1000` is an integer and `cost = tokens × nanosPerToken` is an
 * exact integer product: no division, no rounding. A 4th decimal would need sub-nano units,
 * which is why the price book refuses it.
 *
 * Duration-priced models (USD per minute) are the one place where division happens:
 * `cost = duration_ms × nanosPerMinute / 60000`, rounded half up to the nano-dollar, once per
 * billed event. Each event rounds on its own (at most 0.5 nano-dollar off per event), so a
 * ledger row's cost can be recomputed from that row alone.
 */

export const NANOS_PER_USD = 1_000_000_000n;

/** A decimal number as `digits × 10^exponent`, parsed from text so no binary float is involved. */
interface Decimal {
  negative: boolean;
  digits: bigint;
  exponent: number;
}

const DECIMAL_RE = /^([+-]?)(\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

function parseDecimal(text: string): Decimal | null {
  const m = DECIMAL_RE.exec(text.trim());
  if (!m) return null;
  const fraction = m[3] ?? '';
  const exp = m[4] === undefined ? 0 : Number(m[4]);
  if (!Number.isSafeInteger(exp)) return null;
  return { negative: m[1] === '-', digits: BigInt(m[2] + fraction), exponent: exp - fraction.length };
}

/**
 * A JSON number's shortest round-trip text is the literal written in the file (for the ≤17
 * significant digits anyone writes), so converting through String() recovers the author's decimal.
 */
function toDecimal(value: number | string): Decimal | null {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    return parseDecimal(String(value));
  }
  return parseDecimal(value);
}

/** value × 10^scale as an integer, or null when that would drop a non-zero digit. */
function scaleExact(d: Decimal, scale: number): bigint | null {
  const shift = d.exponent + scale;
  let n: bigint;
  if (shift >= 0) n = d.digits * 10n ** BigInt(shift);
  else {
    const div = 10n ** BigInt(-shift);
    if (d.digits % div !== 0n) return null;
    n = d.digits / div;
  }
  return d.negative ? -n : n;
}

/** value × 10^scale rounded half up (away from zero for the non-negative values used here). */
function scaleHalfUp(d: Decimal, scale: number): bigint {
  const shift = d.exponent + scale;
  let n: bigint;
  if (shift >= 0) n = d.digits * 10n ** BigInt(shift);
  else n = divHalfUp(d.digits, 10n ** BigInt(-shift));
  return d.negative ? -n : n;
}

/** a / b for a ≥ 0, b > 0, rounded half up. */
export function divHalfUp(a: bigint, b: bigint): bigint {
  if (b <= 0n || a < 0n) throw new RangeError('divHalfUp needs a ≥ 0 and b > 0');
  return (a * 2n + b) / (b * 2n);
}

export class MoneyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MoneyError';
  }
}

/**
 * Parses a non-negative decimal USD amount ("12", "0.5", "0.000000001") into nano-dollars.
 * More than `maxDecimals` (≤ 9) fractional digits is refused rather than rounded: a limit or a
 * price silently changed by rounding is a billing bug.
 */
export function parseUsd(text: string, maxDecimals = 9): bigint {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new MoneyError(`not a non-negative decimal USD amount: ${JSON.stringify(text)}`);
  const dot = text.indexOf('.');
  const decimals = dot < 0 ? 0 : text.length - dot - 1;
  if (decimals > Math.min(9, maxDecimals)) {
    throw new MoneyError(`${text}: at most ${Math.min(9, maxDecimals)} decimals allowed`);
  }
  const d = parseDecimal(text);
  const n = d && scaleExact(d, 9);
  if (n === null || n === undefined) throw new MoneyError(`not a USD amount: ${text}`);
  return n;
}

/** Nano-dollars as a plain decimal USD string with all nine decimals: 12345678n → "0.012345678". */
export function formatUsd(nanos: bigint): string {
  const negative = nanos < 0n;
  const abs = negative ? -nanos : nanos;
  const whole = abs / NANOS_PER_USD;
  const frac = (abs % NANOS_PER_USD).toString().padStart(9, '0');
  return `${negative ? '-' : ''}${whole.toString()}.${frac}`;
}

/**
 * A token price in USD per 1M tokens (≤ 3 decimals) as nano-dollars per token; see the file
 * comment for why that is an exact integer. Throws MoneyError on a 4th decimal or a negative.
 */
export function tokenPriceNanos(usdPerMillion: number | string): bigint {
  const d = toDecimal(usdPerMillion);
  if (!d || d.negative) throw new MoneyError(`price must be a non-negative decimal, got ${String(usdPerMillion)}`);
  const n = scaleExact(d, 3);
  if (n === null) throw new MoneyError(`price ${String(usdPerMillion)} USD/1M tokens has more than 3 decimals`);
  return n;
}

/** A duration price in USD per minute (≤ 9 decimals) as nano-dollars per minute. */
export function minutePriceNanos(usdPerMinute: number | string): bigint {
  const d = toDecimal(usdPerMinute);
  if (!d || d.negative) throw new MoneyError(`price must be a non-negative decimal, got ${String(usdPerMinute)}`);
  const n = scaleExact(d, 9);
  if (n === null) throw new MoneyError(`price ${String(usdPerMinute)} USD/minute is finer than a nano-dollar`);
  return n;
}

/**
 * Seconds as reported upstream (a JSON number, possibly fractional) to whole milliseconds,
 * half up, from the number's decimal text so that 1.0005 s is 1001 ms and not 1000.
 * Negative or non-finite input is 0.
 */
export function secondsToMs(seconds: number): number {
  const d = toDecimal(seconds);
  if (!d || d.negative) return 0;
  return Number(scaleHalfUp(d, 3));
}

/** Cost of a duration at a per-minute price, rounded half up to the nano-dollar. */
export function durationCostNanos(durationMs: number, nanosPerMinute: bigint): bigint {
  if (!Number.isSafeInteger(durationMs) || durationMs <= 0) return 0n;
  return divHalfUp(BigInt(durationMs) * nanosPerMinute, 60_000n);
}
