import type { Principal } from '../../src/auth/principal';
import { LimitExceededError } from '../../src/limits/errors';
import { MemorySessionLimiter, subjectKey } from '../../src/limits/session-limiter';

const who = (user: string, keyId?: string, tenant?: string): Principal => ({ user, keyId, tenant, scopes: ['realtime'], kind: 'api_key' });
const limits = { maxSessionsPerUser: 2, maxSessionsPerKey: 3, connectionsPerMinutePerUser: 100 };

async function refusal(p: Promise<unknown>): Promise<LimitExceededError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LimitExceededError);
  return err as LimitExceededError;
}

describe('MemorySessionLimiter', () => {
  it('caps concurrent sessions per user and frees a slot on release, once', async () => {
    const l = new MemorySessionLimiter(limits);
    const a = await l.acquire(who('ann', 'k1'));
    await l.acquire(who('ann', 'k2'));
    const err = await refusal(l.acquire(who('ann', 'k3')));
    expect(err.statusCode).toBe(429);
    expect(err.toBody().error).toMatchObject({ code: 'too_many_sessions', type: 'rate_limit_error' });
    expect(err.retryAfterS).toBeUndefined();
    // Another user is unaffected.
    await l.acquire(who('bob', 'k1'));
    await a.release();
    await a.release(); // idempotent: must not free a second slot
    await l.acquire(who('ann', 'k3'));
    await refusal(l.acquire(who('ann', 'k4')));
  });

  it('caps concurrent sessions per credential across users', async () => {
    const l = new MemorySessionLimiter({ ...limits, maxSessionsPerKey: 2 });
    await l.acquire(who('u1', 'shared'));
    await l.acquire(who('u2', 'shared'));
    const err = await refusal(l.acquire(who('u3', 'shared')));
    expect(err.message).toMatch(/This key/);
    // No key id (e.g. the admin token): only the user limit applies.
    await l.acquire(who('u3'));
  });

  it('keeps users of different tenants apart, whatever their names contain', async () => {
    expect(subjectKey(who('b', undefined, 'a:'))).not.toBe(subjectKey(who(':b', undefined, 'a')));
    const l = new MemorySessionLimiter({ ...limits, maxSessionsPerUser: 1 });
    await l.acquire(who('alice', undefined, 't1'));
    await l.acquire(who('alice', undefined, 't2'));
    await refusal(l.acquire(who('alice', undefined, 't1')));
  });

  it('limits connections per minute per user, with a Retry-After to the window end', async () => {
    let t = 600_000 + 45_000;
    const l = new MemorySessionLimiter({ ...limits, connectionsPerMinutePerUser: 2 }, { now: () => t });
    await (await l.acquire(who('cy'))).release();
    await (await l.acquire(who('cy'))).release();
    const err = await refusal(l.acquire(who('cy')));
    expect(err.toBody().error.code).toBe('connection_rate_exceeded');
    expect(err.retryAfterS).toBe(15);
    t += 15_000;
    await l.acquire(who('cy'));
  });
});
