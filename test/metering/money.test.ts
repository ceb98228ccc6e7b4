import {
  divHalfUp,
  durationCostNanos,
  formatUsd,
  minutePriceNanos,
  MoneyError,
  parseUsd,
  secondsToMs,
  tokenPriceNanos,
} from '../../src/metering/money';

describe('formatUsd', () => {
  it.each([
    [0n, '0.000000000'],
    [1n, '0.000000001'],
    [12_345_678n, '0.012345678'],
    [999_999_999n, '0.999999999'],
    [1_000_000_000n, '1.000000000'],
    [1_500_000_000n, '1.500000000'],
    [-1n, '-0.000000001'],
    [-1_500_000_001n, '-1.500000001'],
    // Beyond 2^53 nano-dollars (~$9.0M) a number would lose digits; bigint does not.
    [9_007_199_254_740_993n, '9007199.254740993'],
    [123_456_789_012_345_678_901n, '123456789012.345678901'],
  ])('%s nanos → %s', (nanos, text) => {
    expect(formatUsd(nanos)).toBe(text);
  });
});

describe('parseUsd', () => {
  it.each([
    ['0', 0n],
    ['5', 5_000_000_000n],
    ['0.5', 500_000_000n],
    ['0.000000001', 1n],
    ['12.345678', 12_345_678_000n],
    ['9007199.254740993', 9_007_199_254_740_993n],
    ['007.10', 7_100_000_000n],
  ])('%s → %s nanos', (text, nanos) => {
    expect(parseUsd(text)).toBe(nanos);
  });

  it('round-trips through formatUsd', () => {
    for (const n of [0n, 1n, 10n, 999n, 1_000_000_001n, 123_456_789_123n]) expect(parseUsd(formatUsd(n))).toBe(n);
  });

  it.each(['', '-1', '1e3', '.5', '5.', '1,5', ' 1', 'abc', '0.0000000001', 'NaN'])('refuses %j', (text) => {
    expect(() => parseUsd(text)).toThrow(MoneyError);
  });

  it('honours a stricter decimal limit', () => {
    expect(parseUsd('1.123456', 6)).toBe(1_123_456_000n);
    expect(() => parseUsd('1.1234567', 6)).toThrow(/at most 6 decimals/);
  });
});

describe('tokenPriceNanos', () => {
  it('is price × 1000: milli-dollars per 1M tokens are nano-dollars per token', () => {
    // $5.00 / 1M tokens = 5e-6 USD per token = 5000 nano-dollars per token.
    expect(tokenPriceNanos(5)).toBe(5000n);
    expect(tokenPriceNanos(2.5)).toBe(2500n);
    expect(tokenPriceNanos(0.06)).toBe(60n);
    expect(tokenPriceNanos(0.001)).toBe(1n);
    expect(tokenPriceNanos('1.25')).toBe(1250n);
    expect(tokenPriceNanos(0)).toBe(0n);
  });

  it('stays exact where float arithmetic drifts', () => {
    expect(0.1 * 3 * 1000).not.toBe(300); // why prices never go through float arithmetic
    expect(1.005 * 1000).not.toBe(1005);
    expect(tokenPriceNanos(0.3)).toBe(300n);
    expect(tokenPriceNanos(1.005)).toBe(1005n);
  });

  it('refuses a 4th decimal, negatives and non-numbers', () => {
    expect(() => tokenPriceNanos(0.0005)).toThrow(/more than 3 decimals/);
    expect(() => tokenPriceNanos('2.5001')).toThrow(MoneyError);
    expect(() => tokenPriceNanos(-1)).toThrow(MoneyError);
    expect(() => tokenPriceNanos(Number.NaN)).toThrow(MoneyError);
    expect(() => tokenPriceNanos(1e-7)).toThrow(MoneyError);
  });
});

describe('duration pricing', () => {
  it('converts per-minute prices exactly', () => {
    expect(minutePriceNanos(0.017)).toBe(17_000_000n);
    expect(minutePriceNanos(0.006)).toBe(6_000_000n);
    expect(() => minutePriceNanos(0.0000000001)).toThrow(MoneyError);
  });

  it('reads seconds from their decimal text, half up to the millisecond', () => {
    expect(secondsToMs(1)).toBe(1000);
    expect(secondsToMs(2.5)).toBe(2500);
    expect(Math.round(4.0005 * 1000)).toBe(4000); // the float product rounds the wrong way …
    expect(secondsToMs(4.0005)).toBe(4001); // … the decimal text rounds half up
    expect(secondsToMs(1.0005)).toBe(1001);
    expect(secondsToMs(1.0004)).toBe(1000);
    expect(secondsToMs(0.0001)).toBe(0);
    expect(secondsToMs(-3)).toBe(0);
    expect(secondsToMs(Number.POSITIVE_INFINITY)).toBe(0);
    expect(secondsToMs(1e-7)).toBe(0);
    expect(secondsToMs(12e3)).toBe(12_000_000);
  });

  it('rounds a duration cost half up to the nano-dollar', () => {
    // $0.017/min = 17_000_000 nanos/min; 1 ms = 17_000_000 / 60_000 = 283.333… → 283
    expect(durationCostNanos(1, 17_000_000n)).toBe(283n);
    // 3 ms = 850 exactly
    expect(durationCostNanos(3, 17_000_000n)).toBe(850n);
    // 2 ms = 566.666… → 567
    expect(durationCostNanos(2, 17_000_000n)).toBe(567n);
    // 60 s = one minute = the price
    expect(durationCostNanos(60_000, 17_000_000n)).toBe(17_000_000n);
    // exactly .5: 1 ms at 30 nanos/min = 0.0005 → 0 ; at 30_000 nanos/min = 0.5 → 1 (half up)
    expect(durationCostNanos(1, 30_000n)).toBe(1n);
    expect(durationCostNanos(0, 17_000_000n)).toBe(0n);
    expect(durationCostNanos(-5, 17_000_000n)).toBe(0n);
  });

  it('divHalfUp', () => {
    expect(divHalfUp(5n, 2n)).toBe(3n);
    expect(divHalfUp(4n, 3n)).toBe(1n);
    expect(divHalfUp(5n, 3n)).toBe(2n);
    expect(() => divHalfUp(1n, 0n)).toThrow(RangeError);
  });
});
