/**
 * The operator console at /admin/ui in Debian's Chromium (playwright-core): sign in, a spend
 * chart drawn from ledger rows made by simulated conversations through the relay, create and
 * revoke a key, edit a budget, watch a live session appear and hang it up, filter the sessions
 * log and export it as CSV — at 1280×800 and at phone size. Screenshots go to test-artifacts/.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { TestClient } from '../support/ws-client';

jest.setTimeout(90_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'admin-console');

async function converse(r: RelayInstance, key: string, model: string, responses: number): Promise<void> {
  const c = await TestClient.connect(`${r.wsUrl}?model=${model}`, { headers: { authorization: `Bearer ${key}` } });
  await c.waitFor('session.created');
  for (let i = 0; i < responses; i++) {
    const from = c.events.length;
    c.send({ type: 'response.create' });
    await c.waitFor('response.done', 5000, from);
  }
  c.ws.close(1000);
  await c.closed;
}

describe('admin console at /admin/ui (Chromium)', () => {
  /**
   * Polls a page-side expression from here: page.waitForFunction would evaluate it inside the
   * page, which the console's CSP (no 'unsafe-eval') rightly refuses.
   */
  async function pageTrue(expression: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await page.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  let relay: RelayInstance;
  let work: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const admin = (): Record<string, string> => ({ authorization: `Bearer ${relay.adminToken}` });
  const shot = (name: string): Promise<Buffer> => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    work = mkdtempSync(path.join(tmpdir(), 'relay-console-'));
    relay = await startRelay();
    const alice = await relay.createKey('alice', ['realtime'], 'acme');
    const bob = await relay.createKey('bob', ['realtime'], 'globex');
    await converse(relay, alice, 'gpt-realtime', 3);
    await converse(relay, alice, 'gpt-realtime-mini', 2);
    await converse(relay, bob, 'gpt-realtime', 1);
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 40[13]/.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await relay?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('signs in with the admin token (a wrong one is refused), keeping it out of the URL', async () => {
    const res = await page.goto(`${relay.baseUrl}/admin/ui`);
    expect(res?.status()).toBe(200);
    const csp = res?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await page.fill('#token', 'not-the-admin-token-at-all');
    await page.click('#signin-button');
    await page.locator('#signin-error').waitFor({ state: 'visible' });
    expect(await page.textContent('#signin-error')).toMatch(/not accepted/);
    await shot('01-signin-refused');
    await page.fill('#token', relay.adminToken);
    await page.click('#signin-button');
    await page.locator('#app').waitFor({ state: 'visible' });
    expect(page.url()).not.toContain(relay.adminToken);
    expect(await page.evaluate<string[]>('Object.values(sessionStorage)')).toContain(relay.adminToken);
    expect(await page.evaluate<string[]>('Object.values(localStorage)')).toEqual([]);
  });

  it('draws spend by model, stacked, from the ledger rows, by day, week and month', async () => {
    const chart = page.locator('#spend-chart[data-drawn="true"]');
    await chart.waitFor();
    expect(await chart.getAttribute('data-series')).toBe('2');
    const ledger = await relay.request<{ total: { cost_usd: string } }>('GET', '/admin/usage', { headers: admin() });
    expect(Number(await chart.getAttribute('data-total'))).toBeCloseTo(Number(ledger.body.total.cost_usd), 9);
    expect(await page.locator('#spend-table tbody tr').count()).toBe(2);
    expect(await page.textContent('#spend-table')).toContain('gpt-realtime-mini');
    // The chart's canvas has bars on it in each model's colour.
    // Page-side code as strings: this suite compiles without the DOM library.
    const colours = await page.evaluate<string[]>(`(() => {
      const canvas = document.querySelector('#spend-chart canvas');
      if (!canvas) return [];
      const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
      const seen = new Set();
      for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 200) seen.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]);
      return [...seen];
    })()`);
    const near = (rgb: number[]): boolean => colours.some((c) => c.split(',').map(Number).every((v, i) => Math.abs(v - rgb[i]) < 40));
    expect(near([37, 99, 235])).toBe(true); // first model
    expect(near([22, 163, 74])).toBe(true); // second model, stacked on it
    expect(await page.locator('.u-legend').textContent()).toContain('gpt-realtime-mini');
    await shot('02-spend-day');
    for (const interval of ['week', 'month']) {
      await page.click(`#interval [data-interval="${interval}"]`);
      await pageTrue(`document.querySelector('#spend-chart')?.getAttribute('data-buckets') === '12'`);
      await page.locator('#spend-chart canvas').waitFor();
    }
    await shot('03-spend-month');
  });

  it('creates a key (secret shown once) and revokes it', async () => {
    await page.click('[data-tab="keys"]');
    await page.locator('#keys-table tbody tr').first().waitFor();
    await page.fill('#key-form [name="user"]', 'partner-app');
    await page.fill('#key-form [name="tenant"]', 'acme');
    await page.fill('#key-form [name="name"]', 'Partner integration');
    await page.fill('#key-form [name="expires"]', '2099-12-31');
    await page.check('#key-form [value="mint"]');
    await page.click('#key-create');
    await page.locator('#key-secret').waitFor({ state: 'visible' });
    const secret = (await page.textContent('#key-secret-value')) ?? '';
    expect(secret).toMatch(/^rk_/);
    const row = page.locator('#keys-table tbody tr', { hasText: 'Partner integration' });
    await row.waitFor();
    expect(await row.textContent()).toContain('realtime, mint, usage');
    expect(await row.textContent()).toContain('2099-12-31');
    await shot('04-key-created');
    // The new key works...
    const own = await relay.request('GET', '/v1/sessions', { headers: { authorization: `Bearer ${secret}` } });
    expect(own.status).toBe(200);
    await page.click('#key-secret-done');
    expect(await page.locator('#key-secret').isHidden()).toBe(true);
    expect(await page.content()).not.toContain(secret);
    // ...until it is revoked (two clicks: arm, confirm).
    await row.locator('button', { hasText: 'Revoke' }).click();
    await row.locator('button', { hasText: 'Confirm revoke' }).click();
    await page.locator('#keys-table tbody tr.revoked', { hasText: 'Partner integration' }).waitFor();
    const after = await relay.request('GET', '/v1/sessions', { headers: { authorization: `Bearer ${secret}` } });
    expect(after.status).toBe(401);
    await shot('05-key-revoked');
  });

  it('sets and edits a budget, and shows how close the top spenders are', async () => {
    await page.click('[data-tab="budgets"]');
    await page.locator('#budgets-empty').waitFor({ state: 'visible' });
    await page.selectOption('#budget-form [name="scope"]', 'user');
    await page.fill('#budget-form [name="id"]', 'alice');
    await page.fill('#budget-form [name="monthly"]', '0.01');
    await page.click('#budget-save');
    const row = page.locator('#budgets-table tr[data-budget="user:alice"]');
    await row.waitFor();
    await row.locator('button', { hasText: 'Edit' }).click();
    expect(await page.inputValue('#budget-form [name="id"]')).toBe('alice');
    await page.fill('#budget-form [name="monthly"]', '2.5');
    await page.fill('#budget-form [name="daily"]', 'lots');
    await page.click('#budget-save');
    await page.locator('#banner').waitFor({ state: 'visible' });
    expect(await page.textContent('#banner')).toMatch(/daily must be an amount/);
    await page.fill('#budget-form [name="daily"]', '');
    await page.click('#budget-save');
    await pageTrue(`document.querySelector('#budgets-table tr[data-budget="user:alice"]')?.textContent?.includes('$2.50')`);
    const stored = await relay.request<{ limits: { monthly_usd: string; daily_usd: string | null } }>('GET', '/admin/budgets/user/alice', { headers: admin() });
    expect(stored.body.limits).toMatchObject({ monthly_usd: '2.500000000', daily_usd: null });
    await shot('06-budgets');
    await page.click('[data-tab="top"]');
    const alice = page.locator('#top-user tbody tr', { hasText: 'alice' });
    await alice.waitFor();
    expect(await alice.locator('.budget').count()).toBe(1);
    expect(await alice.textContent()).toMatch(/monthly: .* of \$2\.50/);
    // The three tables load one after the other.
    await pageTrue(`document.querySelectorAll('#top-tenant tbody tr').length === 2`);
    expect(await page.locator('#top-key tbody tr').count()).toBe(2);
    expect(await page.textContent('#top-tenant')).toContain('globex');
    await shot('07-top-spenders');
  });

  it('shows a live session as it happens and hangs it up', async () => {
    await page.click('[data-tab="live"]');
    await page.locator('#live-empty').waitFor({ state: 'visible' });
    const key = await relay.createKey('carol', ['realtime'], 'initech');
    const c = await TestClient.connect(`${relay.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'response.create' });
    await c.waitFor('response.done');
    const row = page.locator('#live-table tbody tr', { hasText: 'carol' });
    await row.waitFor({ timeout: 10_000 });
    // Its running cost comes from the ledger: the billed response shows up within a refresh or two.
    await pageTrue(`(() => {
      const cells = document.querySelectorAll('#live-table tbody tr td');
      return cells[4]?.textContent === '1' && cells[5]?.textContent !== '$0.00';
    })()`);
    expect(await row.textContent()).toContain('gpt-realtime');
    await shot('08-live');
    await row.locator('button', { hasText: 'Close' }).click();
    await row.locator('button', { hasText: 'Confirm hang-up' }).click();
    expect((await c.closed).code).toBe(1008);
    await page.locator('#live-empty').waitFor({ state: 'visible', timeout: 10_000 });
    await shot('09-live-closed');
  });

  it('filters the sessions log and exports it as CSV', async () => {
    await page.click('[data-tab="sessions"]');
    await page.locator('#sessions-table tbody tr').first().waitFor();
    expect(await page.locator('#sessions-table tbody tr').count()).toBe(4);
    expect(await page.textContent('#sessions-table')).toContain('closed_by_admin');
    await page.fill('#session-filter [name="user"]', 'alice');
    await page.click('#session-filter button[type="submit"]');
    await pageTrue(`document.querySelectorAll('#sessions-table tbody tr').length === 2`);
    await shot('10-sessions-filtered');
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#sessions-csv')]);
    const file = path.join(work, 'export.csv');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\r\n');
    expect(lines[0].startsWith('id,user,tenant,key_id')).toBe(true);
    expect(lines).toHaveLength(3);
    expect(lines.slice(1).every((l) => l.split(',')[1] === 'alice')).toBe(true);
    await page.fill('#session-filter [name="user"]', 'nobody');
    await page.click('#session-filter button[type="submit"]');
    await page.locator('#sessions-empty').waitFor({ state: 'visible' });
  });

  it('fits a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const tab of ['spend', 'keys', 'sessions']) {
      await page.click(`[data-tab="${tab}"]`);
      await page.waitForTimeout(300);
      // Wide tables may scroll inside their .table-wrap; nothing else may stick out.
      const wide = await page.evaluate<string[]>(`[...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest('.table-wrap'))
        .map((e) => e.tagName + '.' + e.className)`);
      expect(wide).toEqual([]);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth')).toBeLessThanOrEqual(0);
      await shot(`11-phone-${tab}`);
    }
    expect(problems).toEqual([]);
  });
});
