import { migrate } from '../../src/storage/database';
import { ApprovalBroker } from '../../src/tools/approvals';
import { ApprovalStore, ToolCallStore, toolMigrations } from '../../src/tools/store';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';

describe.each(BACKENDS)('tool tables on %s', (backend) => {
  let t: TestDatabase;
  beforeEach(async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, toolMigrations);
  });
  afterEach(async () => {
    await t.cleanup();
  });

  const base = { session_id: 's1', user: 'ana', tenant: null, call_id: 'call_1', tool: 'pay', kind: 'function' as const, approver: 'user' as const, arguments: '{}' };

  it('lets exactly one of two concurrent deciders win, and no one decide after the deadline', async () => {
    const store = new ApprovalStore(t.db);
    const a = await store.create({ ...base, expires_at: Date.now() + 60_000 });
    const results = await Promise.all([store.decide(a.id, true, null, 'user:ana'), store.decide(a.id, false, 'no', 'operator:root')]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.find((r) => !r.ok)).toMatchObject({ ok: false, reason: 'already_decided' });

    const late = await store.create({ ...base, call_id: 'call_2', expires_at: Date.now() - 1 });
    expect(await store.decide(late.id, true, null, 'user:ana')).toMatchObject({ ok: false, reason: 'expired' });
    expect(await store.list({ status: 'pending', user: 'ana', tenant: null })).toEqual([]);
    expect(await store.decide('tap_missing', true, null, 'x')).toEqual({ ok: false, reason: 'not_found' });
  });

  it('wakes a waiter on another instance (a second store on the same database) by polling', async () => {
    const waiterSide = new ApprovalBroker(new ApprovalStore(t.db), 50);
    const otherInstance = new ApprovalBroker(new ApprovalStore(t.db), 50);
    const a = await waiterSide.store.create({ ...base, expires_at: Date.now() + 10_000 });
    const waiting = waiterSide.wait(a, new AbortController().signal);
    await otherInstance.decide(a.id, true, 'fine', 'operator:root');
    await expect(waiting).resolves.toMatchObject({ status: 'approved', reason: 'fine', decided_by: 'operator:root' });
  });

  it('expires an approval whose session ended', async () => {
    const broker = new ApprovalBroker(new ApprovalStore(t.db), 50);
    const a = await broker.store.create({ ...base, expires_at: Date.now() + 10_000 });
    const ended = new AbortController();
    const waiting = broker.wait(a, ended.signal);
    ended.abort();
    await expect(waiting).resolves.toMatchObject({ status: 'expired', decided_by: 'timeout' });
    expect(await broker.store.countPending()).toBe(0);
  });

  it('stores and filters audit rows', async () => {
    const calls = new ToolCallStore(t.db);
    const row = {
      session_id: 's1', user: 'ana', tenant: 'acme', tool: 'book', kind: 'function' as const, call_id: 'call_1', arguments: null, arguments_sha256: 'ab'.repeat(32),
      outcome: 'completed' as const, approval_id: null, approval_decision: null, approval_by: null, approval_at: null, webhook_status: 200, latency_ms: 12, output_bytes: 34,
    };
    await calls.record(row);
    await calls.record({ ...row, user: 'ben', call_id: 'call_2' });
    expect(await calls.list({ user: 'ana' })).toEqual([expect.objectContaining({ ...row, id: expect.stringMatching(/^tc_/), created_at: expect.any(String) })]);
    expect(await calls.list({ tenant: 'acme' })).toHaveLength(2);
  });
});
