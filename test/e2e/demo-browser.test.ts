/**
 * The browser demo end to end: Debian's Chromium (driven by playwright-core) with a fake
 * microphone that plays a committed speech WAV (test/fixtures/audio), the page at /demo, the relay and
 * its simulator. Checks what reached the upstream (real, non-silent PCM16), what the page showed
 * (transcript, scheduled playback, cost) and that the cost is the ledger's.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { rms } from './helpers/audio';

jest.setTimeout(40_000);

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');
const USER = 'carol-demo';

/**
 * 24 kHz mono 16-bit speech, then silence long enough for the page's end-of-turn detection.
 * Committed (test/fixtures/audio, made by its make.sh with espeak-ng + sox) so the suite needs
 * neither tool; the JSON beside it holds the spoken part's duration.
 */
function speechWav(): { file: string; speechMs: number } {
  const dir = path.resolve(__dirname, '..', 'fixtures', 'audio');
  const meta = JSON.parse(readFileSync(path.join(dir, 'speech-24k.json'), 'utf8')) as { speech_ms: number };
  return { file: path.join(dir, 'speech-24k.wav'), speechMs: meta.speech_ms };
}

async function poll<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(v)}`);
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
}

describe('browser demo at /demo (Chromium, fake microphone)', () => {
  let relay: RelayInstance;
  let work: string;
  let context: BrowserContext | undefined;
  let page: Page;
  let speechMs = 0;
  const pageProblems: string[] = [];

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'relay-demo-'));
    const wav = speechWav();
    speechMs = wav.speechMs;
    relay = await startRelay();
    context = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 960, height: 1100 },
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
        `--use-file-for-fake-audio-capture=${wav.file}`,
      ],
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => pageProblems.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error') pageProblems.push(`console: ${msg.text()} ${msg.location().url}`);
    });
  });

  afterAll(async () => {
    await context?.close();
    await relay?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('streams the microphone, plays the reply, shows the transcript and the billed cost', async () => {
    const key = await relay.createKey(USER, ['mint', 'usage']);
    const res = await page.goto(`${relay.baseUrl}/demo`);
    expect(res?.status()).toBe(200);
    await page.fill('#api-key', key);
    await page.click('#start');

    const stats = page.locator('#stats');
    const num = async (attr: string): Promise<number> => Number(await stats.getAttribute(attr));
    await poll(() => num('data-responses'), (n) => n >= 1, 'a response.done in the page', 25_000);
    const userLine = page.locator('#transcript .turn.user .text').first();
    const assistantLine = page.locator('#transcript .turn.assistant .text').first();
    await poll(() => userLine.textContent(), (t) => typeof t === 'string' && /transcript of \d+ milliseconds/i.test(t), 'the user transcript');
    expect((await assistantLine.textContent())?.trim().length).toBeGreaterThan(5);
    expect(await num('data-played-chunks')).toBeGreaterThan(0);
    await page.click('#stop');

    // What the upstream received: 24 kHz PCM16 that is actually speech, not silence or garbage.
    const simulator = relay.relay.services.simulator;
    if (!simulator) throw new Error('the relay is not running its simulator');
    const appends = simulator.stats.receivedClientEvents
      .filter((e) => e.type === 'input_audio_buffer.append')
      .map((e) => Buffer.from((JSON.parse(e.raw) as { audio: string }).audio, 'base64'));
    expect(appends.length).toBeGreaterThanOrEqual(10);
    expect(appends.every((a) => a.length === 4800)).toBe(true); // 100 ms at 24 kHz, 2 bytes a sample
    const levels = appends.map(rms);
    expect(Math.max(...levels)).toBeGreaterThan(0.05);
    expect(levels.filter((l) => l > 0.01).length / levels.length).toBeGreaterThan(0.5);
    // The first turn lasts about as long as the spoken sentence (plus the page's pre-roll and
    // end-of-turn pause): a wrong resampling ratio would stretch or squeeze it by 2x or more.
    const received = simulator.stats.receivedClientEvents;
    const firstCommit = received.findIndex((e) => e.type === 'input_audio_buffer.commit');
    expect(firstCommit).toBeGreaterThan(0);
    const firstTurnMs = received.slice(0, firstCommit).filter((e) => e.type === 'input_audio_buffer.append').length * 100;
    expect(firstTurnMs).toBeGreaterThan(speechMs * 0.8);
    expect(firstTurnMs).toBeLessThan(speechMs + 1500);

    // The page's total is the ledger's total for the user, once the relay has billed everything.
    const ledgerTotal = async (): Promise<string> => {
      const r = await relay.request<{ total: { cost_usd: string } }>('GET', '/v1/usage', { headers: { authorization: `Bearer ${key}` } });
      return r.body.total.cost_usd;
    };
    const shown = page.locator('#total-cost');
    await poll(
      async () => {
        const [server, onPage] = [await ledgerTotal(), await shown.getAttribute('data-cost-usd')];
        if (server !== onPage) await page.click('#refresh-cost');
        return { server, onPage };
      },
      (v) => v.server === v.onPage && Number(v.server) > 0,
      'the page cost to equal the ledger total',
    );
    const total = await ledgerTotal();
    const rows = await relay.relay.services.metering.ledger.usage({ user: USER });
    expect(rows[0]?.responses).toBeGreaterThanOrEqual(1);
    expect(await shown.getAttribute('data-cost-usd')).toBe(total);
    expect(await shown.textContent()).toBe(`$${Number(total).toFixed(6)}`);
    expect(Number(await page.locator('#session-cost').getAttribute('data-cost-usd'))).toBe(Number(total));

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'demo.png'), fullPage: true });
    expect(pageProblems).toEqual([]);
  });
});
