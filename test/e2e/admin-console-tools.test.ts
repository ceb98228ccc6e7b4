/**
 * The console's tool pages at /admin/ui in Debian's Chromium (playwright-core), against a relay
 * with server-side tools and a signed test webhook (test/tools/support.ts): a conversation makes
 * the simulated model call `wire_operator` (a tool held for an operator), the operator sees the
 * pending approval in the page and approves it, the webhook runs and the call appears in the
 * tool-calls audit page, which filters and exports CSV. Also: a rejection with a reason, a call
 * decided elsewhere meanwhile, phone size. Screenshots go to test-artifacts/admin-console-tools/.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { TOOL_CALL_FIELDS } from '../../src/tools/store';
import { connect, nthDone, outputsSentUpstream, startToolRelay, userText, type Ev, type ToolRelay } from '../tools/support';
import type { TestClient } from '../support/ws-client';

jest.setTimeout(120_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts', 'admin-console-tools');

/** One CSV record's cells (RFC 4180 quoting: the arguments column holds JSON with commas and quotes). */
function csvCells(line: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      cells.push(cell);
      cell = '';
    } else cell += ch;
  }
  cells.push(cell);
  return cells;
}

describe('admin console: tool approvals and tool calls (Chromium)', () => {
  /** Polls a page-side expression from here (the console's CSP refuses the eval waitForFunction needs). */
  async function pageTrue(expression: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await page.evaluate<boolean>(`Boolean(${expression})`))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  let t: ToolRelay;
  let work: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  const requestUrls: string[] = [];
  const clients: TestClient[] = [];
  const admin = (): Record<string, string> => ({ authorization: `Bearer ${t.r.adminToken}` });
  const shot = (name: string): Promise<Buffer> => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

  /** A user's session in which the model calls the operator-approved tool; resolves once the first response is done. */
  async function triggerOperatorTool(user: string, tenant?: string): Promise<TestClient> {
    const { c } = await connect(t.r, user, tenant);
    clients.push(c);
    c.send(userText('wire_operator the money'));
    c.send({ type: 'response.create' });
    await nthDone(c, 1);
    return c;
  }

  const pendingRow = (user: string) => page.locator('#approvals-table tbody tr.pending', { hasText: user });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    work = mkdtempSync(path.join(tmpdir(), 'relay-console-tools-'));
    t = await startToolRelay();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'] });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    page = await context.newPage();
    page.on('request', (req) => requestUrls.push(req.url()));
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      // 409 is the decided-elsewhere case below; the page shows it in its banner.
      if (msg.type() === 'error' && !/status of 40[139]/.test(msg.text())) problems.push(`console: ${msg.text()}`);
    });
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await context?.close();
    await browser?.close();
    await t?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('signs in and shows the empty approvals page', async () => {
    await page.goto(`${t.r.baseUrl}/admin/ui`);
    await page.fill('#token', t.r.adminToken);
    await page.click('#signin-button');
    await page.locator('#app').waitFor({ state: 'visible' });
    await page.click('[data-tab="approvals"]');
    await page.locator('#approvals-empty').waitFor({ state: 'visible' });
    expect(await page.textContent('#approvals-empty')).toBe('No tool calls are waiting for a decision.');
    await page.click('[data-tab="toolcalls"]');
    await page.locator('#toolcalls-empty').waitFor({ state: 'visible' });
    await shot('01-toolcalls-empty');
    await page.click('[data-tab="approvals"]');
  });

  it('shows a pending operator approval as it arrives and approves it: the webhook runs and the model gets the result', async () => {
    const c = await triggerOperatorTool('kim', 'acme');
    expect(t.webhook.calls).toHaveLength(0);
    // No reload: the pending list refreshes itself.
    const row = pendingRow('kim');
    await row.waitFor({ timeout: 15_000 });
    const text = (await row.textContent()) ?? '';
    expect(text).toContain('wire_operator');
    expect(text).toContain('acme');
    expect(text).toContain('operator approval');
    expect(text).toContain('"party_size": 1');
    expect(text).toMatch(/in 0:[0-2]\d/); // 30 s approval timeout
    await shot('02-approval-pending');
    await row.locator('input.reason').fill('checked by ops');
    // A refresh must not wipe what the operator typed.
    await page.waitForTimeout(3500);
    expect(await row.locator('input.reason').inputValue()).toBe('checked by ops');
    await row.locator('button', { hasText: 'Approve' }).click();
    await row.locator('button', { hasText: 'Confirm approve' }).click();
    await page.locator('#approvals-empty').waitFor({ state: 'visible' });
    await nthDone(c, 2);
    expect(t.webhook.calls).toHaveLength(1);
    expect(t.webhook.calls[0]!.signatureValid).toBe(true);
    expect(t.webhook.calls[0]!.body).toMatchObject({ arguments: { party_size: 1, name: 'sample' } });
    expect(outputsSentUpstream(t.r)[0]!.output).toContain('confirmed');
    const stored = await t.r.request<{ data: Ev[] }>('GET', '/admin/tool_approvals?status=approved', { headers: admin() });
    expect(stored.body.data).toHaveLength(1);
    expect(stored.body.data[0]).toMatchObject({ user: 'kim', status: 'approved', reason: 'checked by ops', decided_by: expect.stringMatching(/^operator:/) });
    // The decided one is listed under "approved", with who decided and why.
    await page.selectOption('#approval-filter [name="status"]', 'approved');
    await page.click('#approval-filter button[type="submit"]');
    const decided = page.locator('#approvals-table tbody tr.approved', { hasText: 'kim' });
    await decided.waitFor();
    expect(await decided.textContent()).toContain('checked by ops');
    await shot('03-approval-approved');
    await page.selectOption('#approval-filter [name="status"]', 'pending');
    await page.click('#approval-filter button[type="submit"]');
    await page.locator('#approvals-empty').waitFor({ state: 'visible' });
  });

  it('rejects with a reason (nothing runs, the model is told why), and explains a call decided elsewhere', async () => {
    const lou = await triggerOperatorTool('lou');
    const row = pendingRow('lou');
    await row.waitFor({ timeout: 15_000 });
    await row.locator('input.reason').fill('over the limit');
    await row.locator('button', { hasText: 'Reject' }).click();
    await row.locator('button', { hasText: 'Confirm reject' }).click();
    await page.locator('#approvals-empty').waitFor({ state: 'visible' });
    await nthDone(lou, 2);
    expect(t.webhook.calls).toHaveLength(1);
    const refusal = JSON.parse(outputsSentUpstream(t.r)[1]!.output) as { error: { code: string; message: string } };
    expect(refusal.error.code).toBe('approval_rejected');
    expect(refusal.error.message).toContain('over the limit');

    // Another operator (here: the API) decides first; the page says so and drops the row.
    const mo = await triggerOperatorTool('mo');
    const moRow = pendingRow('mo');
    await moRow.waitFor({ timeout: 15_000 });
    const pending = await t.r.request<{ data: Ev[] }>('GET', '/admin/tool_approvals?status=pending', { headers: admin() });
    expect((await t.r.request('POST', `/admin/tool_approvals/${String(pending.body.data[0]!.id)}`, { headers: admin(), body: { approve: true } })).status).toBe(200);
    await moRow.locator('button', { hasText: 'Reject' }).click();
    await moRow.locator('button', { hasText: 'Confirm reject' }).click();
    await page.locator('#banner').waitFor({ state: 'visible' });
    expect(await page.textContent('#banner')).toBe('This approval was already approved.');
    await page.locator('#approvals-empty').waitFor({ state: 'visible' });
    await shot('04-decided-elsewhere');
    await nthDone(mo, 2);
    expect(t.webhook.calls).toHaveLength(2);
  });

  it('lists the executed calls in the tool-calls page, filters them and exports CSV without the credential in a URL', async () => {
    await page.click('[data-tab="toolcalls"]');
    await pageTrue(`document.querySelectorAll('#toolcalls-table tbody tr').length === 3`);
    const rows = page.locator('#toolcalls-table tbody tr');
    // Newest first: mo's (approved through the API), lou's (rejected), kim's (approved in the page).
    expect(await rows.nth(0).textContent()).toContain('mo');
    const kim = page.locator('#toolcalls-table tbody tr', { hasText: 'kim' });
    const kimText = (await kim.textContent()) ?? '';
    expect(kimText).toContain('wire_operator');
    expect(kimText).toContain('completed');
    expect(kimText).toMatch(/approved by operator:/);
    expect(kimText).toContain('200');
    expect(kimText).toContain('"party_size": 1');
    const lou = (await page.locator('#toolcalls-table tbody tr', { hasText: 'lou' }).textContent()) ?? '';
    expect(lou).toContain('rejected');
    expect(lou).not.toContain('200');
    await shot('05-toolcalls');

    // A session id filters the log to that session.
    await page.locator('#toolcalls-table tbody tr', { hasText: 'lou' }).locator('button.link').click();
    await pageTrue(`document.querySelectorAll('#toolcalls-table tbody tr').length === 1`);
    expect(await page.inputValue('#toolcall-filter [name="session_id"]')).toMatch(/^rs_/);
    expect(await page.textContent('#toolcalls-table tbody')).toContain('lou');
    await page.fill('#toolcall-filter [name="session_id"]', '');
    await page.fill('#toolcall-filter [name="user"]', 'kim');
    await page.click('#toolcall-filter button[type="submit"]');
    await pageTrue(`document.querySelectorAll('#toolcalls-table tbody tr').length === 1`);
    // "To" today includes today (the route's own `to` is exclusive).
    const today = new Date().toISOString().slice(0, 10);
    await page.fill('#toolcall-filter [name="from"]', today);
    await page.fill('#toolcall-filter [name="to"]', today);
    await page.click('#toolcall-filter button[type="submit"]');
    await pageTrue(`document.querySelectorAll('#toolcalls-table tbody tr').length === 1 && document.querySelector('#toolcalls-empty').hidden`);
    await shot('06-toolcalls-filtered');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#toolcalls-csv')]);
    const file = path.join(work, 'tool-calls.csv');
    await download.saveAs(file);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\r\n');
    expect(lines[0]).toBe(TOOL_CALL_FIELDS.join(','));
    expect(lines).toHaveLength(2);
    const cells = csvCells(lines[1]!);
    expect(cells).toHaveLength(TOOL_CALL_FIELDS.length);
    expect(JSON.parse(cells[TOOL_CALL_FIELDS.indexOf('arguments')]!)).toEqual({ party_size: 1, name: 'sample' });
    expect(cells[TOOL_CALL_FIELDS.indexOf('user')]).toBe('kim');
    expect(cells[TOOL_CALL_FIELDS.indexOf('outcome')]).toBe('completed');
    expect(cells[TOOL_CALL_FIELDS.indexOf('approval_decision')]).toBe('approved');

    await page.fill('#toolcall-filter [name="tool"]', 'book_table');
    await page.click('#toolcall-filter button[type="submit"]');
    await page.locator('#toolcalls-empty').waitFor({ state: 'visible' });
    expect(requestUrls.some((u) => u.includes(t.r.adminToken))).toBe(false);
    expect(requestUrls.some((u) => u.includes('/admin/tool_calls?'))).toBe(true);
    await page.fill('#toolcall-filter [name="tool"]', '');
    await page.fill('#toolcall-filter [name="user"]', '');
    await page.click('#toolcall-filter button[type="submit"]');
    await pageTrue(`document.querySelectorAll('#toolcalls-table tbody tr').length === 3`);
  });

  it('fits a phone-sized screen', async () => {
    const c = await triggerOperatorTool('nia');
    await page.setViewportSize({ width: 390, height: 844 });
    await page.click('[data-tab="approvals"]');
    await pendingRow('nia').waitFor({ timeout: 15_000 });
    for (const tab of ['approvals', 'toolcalls']) {
      await page.click(`[data-tab="${tab}"]`);
      await page.waitForTimeout(300);
      // Wide tables may scroll inside their .table-wrap; nothing else may stick out.
      const wide = await page.evaluate<string[]>(`[...document.querySelectorAll('body *')]
        .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5 && !e.closest('.table-wrap'))
        .map((e) => e.tagName + '.' + e.className)`);
      expect(wide).toEqual([]);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth')).toBeLessThanOrEqual(0);
      await shot(`07-phone-${tab}`);
    }
    // Each approval is a card there: the decision buttons are on screen, no sideways scrolling.
    await page.click('[data-tab="approvals"]');
    const approve = pendingRow('nia').locator('button', { hasText: 'Approve' });
    const box = await approve.boundingBox();
    expect(box).not.toBeNull();
    expect(box!.x + box!.width).toBeLessThanOrEqual(390);
    expect(await page.evaluate<number>(`(() => { const w = document.querySelector('#tab-approvals .table-wrap'); return w.scrollWidth - w.clientWidth; })()`)).toBeLessThanOrEqual(0);
    await approve.click();
    await pendingRow('nia').locator('button', { hasText: 'Confirm approve' }).click();
    await nthDone(c, 2);
    await shot('08-phone-approved');
    c.close();
    expect(problems).toEqual([]);
  });
});
