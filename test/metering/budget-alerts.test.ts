/**
 * Budget alert webhooks: signed, once per (subject, period, threshold) even across restarts
 * and instances, retried with backoff, counted in a metric; and through the relay, sent after a
 * billed response without holding the session up.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { BudgetAlerter, budgetAlertMigrations, signAlert, type BudgetAlertPayload } from '../../src/metering/budget-alerts';
import { BudgetGuard } from '../../src/metering/budget-guard';
import { migrate } from '../../src/storage/database';
import { BudgetStore, budgetMigrations } from '../../src/storage/budgets';
import { Ledger, ledgerMigrations } from '../../src/storage/ledger';
import { BACKENDS, openTestDatabase, type TestDatabase } from '../support/databases';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { delay, TestClient } from '../support/ws-client';
import { entry } from '../storage/ledger-fixtures';

jest.setTimeout(30_000);

const SECRET = 'alert-secret-0123456789abcdef';
const USD = 1_000_000_000n;

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver that answers the statuses queued in `answers` (then 200). */
async function receiver(): Promise<{ url: string; got: Received[]; answers: number[]; close: () => Promise<void> }> {
  const got: Received[] = [];
  const answers: number[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.statusCode = answers.shift() ?? 200;
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook`, got, answers, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function verify(r: Received): BudgetAlertPayload {
  const header = String(r.headers['relay-signature']);
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!m) throw new Error(`bad signature header: ${header}`);
  const expected = createHmac('sha256', SECRET).update(`${m[1]}.${r.body}`).digest('hex');
  expect(m[2]).toBe(expected);
  expect(Math.abs(Number(m[1]) - Date.now() / 1000)).toBeLessThan(60);
  return JSON.parse(r.body) as BudgetAlertPayload;
}

async function until(ok: () => boolean, ms = 8000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok() && Date.now() < deadline) await delay(25);
}

describe('signAlert', () => {
  it('is t=<seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">', () => {
    const body = '{"a":1}';
    expect(signAlert('k', body, 1700000000)).toBe(`t=1700000000,v1=${createHmac('sha256', 'k').update(`1700000000.${body}`).digest('hex')}`);
  });
});

describe.each(BACKENDS)('BudgetAlerter on %s', (backend) => {
  let t: TestDatabase;
  let ledger: Ledger;
  let store: BudgetStore;
  let guard: BudgetGuard;
  let hook: Awaited<ReturnType<typeof receiver>>;
  const alerters: BudgetAlerter[] = [];

  beforeEach(async () => {
    t = await openTestDatabase(backend);
    await migrate(t.db, [...ledgerMigrations, ...budgetMigrations, ...budgetAlertMigrations]);
    ledger = new Ledger(t.db);
    store = new BudgetStore(t.db);
    guard = new BudgetGuard({ budgets: store, ledger });
    hook = await receiver();
  });
  afterEach(async () => {
    for (const a of alerters.splice(0)) await a.idle();
    await hook.close();
    await t.cleanup();
  });

  const alerter = (registry?: Registry, thresholds = [80, 100]): BudgetAlerter => {
    const a = new BudgetAlerter({ db: t.db, guard, webhookUrl: hook.url, secret: SECRET, thresholds, registry, retryBaseMs: 20, attempts: 4 });
    alerters.push(a);
    return a;
  };
  const spend = (nanos: bigint, over: Parameters<typeof entry>[0] = {}): Promise<unknown> => ledger.insert(entry({ user: 'alice', tenant: 'acme', keyId: 'k1', costNanos: nanos, createdAt: Date.now(), ...over }));
  const who = { user: 'alice', tenant: 'acme', keyId: 'k1' };

  it('sends one signed alert per crossed threshold, once, even after a restart', async () => {
    await store.update('user', 'alice', { monthly: 10n * USD }, 'acme');
    const a = alerter();
    await spend(7n * USD);
    await a.evaluate(who);
    await a.idle();
    expect(hook.got).toHaveLength(0); // 70 %: below every threshold
    await spend(1n * USD + 500_000_000n); // 85 %
    await a.evaluate(who);
    await a.evaluate(who);
    await a.idle();
    expect(hook.got).toHaveLength(1);
    const first = verify(hook.got[0]);
    expect(first).toMatchObject({ type: 'budget.threshold_crossed', scope: 'user', subject: 'alice', tenant: 'acme', period: 'monthly', threshold_percent: 80, limit_usd: '10.000000000', spent_usd: '8.500000000' });
    expect(first.period_start).toBe(new Date().toISOString().slice(0, 7));
    expect(hook.got[0].headers['content-type']).toBe('application/json');
    await spend(2n * USD); // 105 %
    await a.evaluate(who);
    await a.idle();
    expect(hook.got.map((g) => verify(g).threshold_percent)).toEqual([80, 100]);
    // A restarted relay (a new alerter over the same table) does not resend.
    const b = alerter();
    await b.evaluate(who);
    await b.idle();
    expect(hook.got).toHaveLength(2);
    const rows = await t.db.query<{ delivered_at: unknown }>('SELECT delivered_at FROM budget_alerts');
    expect(rows.every((r) => r.delivered_at !== null)).toBe(true);
  });

  it('alerts for key and tenant budgets too, and two instances racing send once', async () => {
    await store.update('key', 'k1', { total: 2n * USD });
    await store.update('tenant', 'acme', { daily: 4n * USD });
    await spend(4n * USD);
    const [a, b] = [alerter(undefined, [100]), alerter(undefined, [100])];
    await Promise.all([a.evaluate(who), b.evaluate(who), a.evaluate(who), b.evaluate(who)]);
    await Promise.all([a.idle(), b.idle()]);
    const sent = hook.got.map(verify).map((p) => `${p.scope}:${p.subject}:${p.period}:${p.threshold_percent}`);
    expect(sent.sort()).toEqual(['key:k1:total:100', 'tenant:acme:daily:100']);
  });

  it('retries a failing receiver with backoff and counts the outcome', async () => {
    const registry = new Registry();
    await store.update('user', 'alice', { total: 1n * USD }, 'acme');
    await spend(1n * USD);
    hook.answers.push(500, 503);
    const a = alerter(registry, [100]);
    await a.evaluate(who);
    await a.idle();
    // 500, 503, then 200: the same alert (same body, same id), freshly signed each time.
    expect(hook.got).toHaveLength(3);
    expect(new Set(hook.got.map((g) => g.body)).size).toBe(1);
    hook.got.forEach(verify);
    const metric = await registry.getSingleMetricAsString('relay_budget_alerts_total');
    expect(metric).toContain('relay_budget_alerts_total{scope="user",threshold="100",outcome="delivered"} 1');
    expect(metric).not.toContain('outcome="failed"');
  });

  it('gives up after the last attempt, counts a failure, and never resends', async () => {
    const registry = new Registry();
    await store.update('user', 'alice', { total: 1n * USD }, 'acme');
    await spend(1n * USD);
    hook.answers.push(500, 500, 500, 500);
    const a = alerter(registry, [100]);
    await a.evaluate(who);
    await a.idle();
    expect(hook.got).toHaveLength(4);
    expect(await registry.getSingleMetricAsString('relay_budget_alerts_total')).toContain('outcome="failed"} 1');
    await a.evaluate(who);
    await a.idle();
    expect(hook.got).toHaveLength(4);
    const rows = await t.db.query<{ delivered_at: unknown }>('SELECT delivered_at FROM budget_alerts');
    expect(rows).toEqual([{ delivered_at: null }]);
  });
});

describe('budget alerts through the relay', () => {
  let r: RelayInstance | undefined;
  let hook: Awaited<ReturnType<typeof receiver>>;
  afterEach(async () => {
    await r?.close();
    await hook.close();
  });

  it('posts the alert after the billed response that crosses the threshold; the session goes on', async () => {
    hook = await receiver();
    r = await startRelay({ BUDGET_ALERT_WEBHOOK_URL: hook.url, BUDGET_ALERT_WEBHOOK_SECRET: SECRET, BUDGET_ALERT_THRESHOLDS: '50' });
    const key = await r.createKey('erin', ['realtime']);
    const put = await r.relay.app.inject({ method: 'PUT', url: '/admin/budgets/user/erin', headers: { authorization: `Bearer ${r.adminToken}` }, payload: { total_usd: '100' } });
    expect(put.statusCode).toBe(200);
    await r.relay.services.metering.ledger.record(entry({ user: 'erin', tenant: null, keyId: null, costNanos: 60n * USD, createdAt: Date.now() }));
    const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    await until(() => hook.got.length === 1);
    const alert = verify(hook.got[0]);
    expect(alert).toMatchObject({ scope: 'user', subject: 'erin', period: 'total', threshold_percent: 50, limit_usd: '100.000000000' });
    const from = c.events.length;
    c.send({ type: 'response.create' });
    await c.waitFor('response.done', 5000, from);
    await delay(100);
    expect(hook.got).toHaveLength(1);
    c.ws.close();
    await c.closed;
  });
});
