import { FixedWindowRateLimiter } from '../../src/auth/rate-limit';

describe('FixedWindowRateLimiter', () => {
  it('allows the limit per key per window, then refuses until the window turns', async () => {
    let t = 120_000;
    const rl = new FixedWindowRateLimiter({ limit: 2, windowMs: 60_000, now: () => t });
    expect((await rl.consume('a')).remaining).toBe(1);
    expect((await rl.consume('a')).allowed).toBe(true);
    const refused = await rl.consume('a');
    expect(refused).toMatchObject({ allowed: false, remaining: 0, limit: 2 });
    expect(refused.resetMs).toBe(60_000);
    expect((await rl.consume('b')).allowed).toBe(true);
    t += 60_000;
    expect((await rl.consume('a')).allowed).toBe(true);
  });
});
