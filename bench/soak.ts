/**
 * Soak and reconciliation: N sessions × M responses with random usage (audio turns of random
 * length, text turns of random words, audio or text replies, some responses cancelled right
 * after they start) through a full relay (identity, metering, SQLite ledger) in front of its
 * built-in simulator, C sessions at a time, spread over U users.
 *
 * Then the books are checked: per user and in total, the ledger must hold exactly the usage
 * the simulator reports having billed, category by category, and the cost of that usage. The
 * simulator keys its usage by X-Client-Request-Id, which is the relay's session id; the
 * ledger's rows map each session id to its user.
 *
 *   npx tsx bench/soak.ts [--sessions 600] [--responses 12] [--users 20] [--concurrency 32] [--seed 1]
 *
 * Exits 1 on any mismatch or failed session.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { createRelay, type Relay } from '../src/app';
import { loadConfig } from '../src/config/config';
import { createLogger } from '../src/logging';
import { costOf } from '../src/metering/cost';
import { emptyUsage, type TokenUsage } from '../src/metering/usage';
import type { UsageTotals as SimTotals } from '../src/simulator/usage';
import { prng } from '../src/simulator/ids';

const MODEL = 'gpt-realtime';
const ADMIN_TOKEN = 'soak-admin-token-0123456789abcdef0123456789';
const RESPONSE_TIMEOUT_MS = 20_000;

interface Options {
  sessions: number;
  responses: number;
  users: number;
  concurrency: number;
  seed: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { sessions: 600, responses: 12, users: 20, concurrency: 32, seed: 1 };
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i]?.replace(/^--/, '') as keyof Options | undefined;
    const value = Number(argv[i + 1]);
    if (!name || !(name in o) || !Number.isInteger(value) || value < (name === 'seed' ? 0 : 1)) {
      throw new Error(`usage: soak.ts [--sessions N] [--responses M] [--users U] [--concurrency C] [--seed S]; bad argument ${argv[i] ?? ''} ${argv[i + 1] ?? ''}`);
    }
    o[name] = value;
    i++;
  }
  return o;
}


const WORDS = ['book', 'a', 'table', 'for', 'two', 'tonight', 'weather', 'in', 'Paris', 'please', 'what', 'is', 'the', 'time', 'tell', 'me', 'joke', 'about', 'cats', 'and', 'trains'];

// ---- a minimal client ------------------------------------------------------------------------

type Event = Record<string, unknown>;

class SoakClient {
  private readonly events: Event[] = [];
  private waiter: (() => void) | null = null;
  closed = false;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.events.push(JSON.parse(data.toString('utf8')) as Event);
      this.waiter?.();
    });
    ws.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static open(url: string, key: string): Promise<SoakClient> {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${key}` } });
    const c = new SoakClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    });
  }

  send(e: Event): void {
    this.ws.send(JSON.stringify(e));
  }

  /** The first event from index `from` on that matches; rejects on close or timeout. */
  async next(pred: (e: Event) => boolean, from: number, timeoutMs = RESPONSE_TIMEOUT_MS): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (this.closed) throw new Error(`socket closed while waiting; last events: ${this.types(from).slice(-5).join(', ')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; last events: ${this.types(from).slice(-5).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          this.waiter = null;
          resolve();
        };
      });
    }
  }

  get length(): number {
    return this.events.length;
  }

  private types(from: number): string[] {
    return this.events.slice(from).map((e) => String(e.type));
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
    });
  }
}

// ---- one session -----------------------------------------------------------------------------

interface SessionOutcome {
  ok: boolean;
  responses: number;
  cancelled: number;
  error?: string;
}

async function runSession(wsUrl: string, key: string, responses: number, random: () => number): Promise<SessionOutcome> {
  const out: SessionOutcome = { ok: false, responses: 0, cancelled: 0 };
  let c: SoakClient | null = null;
  try {
    c = await SoakClient.open(`${wsUrl}?model=${MODEL}`, key);
    await c.next((e) => e.type === 'session.created', 0);
    // No server VAD: every response is one this script asked for and waits for.
    const instructions = 'Be brief. '.repeat(1 + Math.floor(random() * 20));
    let from = c.length;
    c.send({ type: 'session.update', session: { type: 'realtime', instructions, audio: { input: { turn_detection: null } } } });
    await c.next((e) => e.type === 'session.updated' || e.type === 'error', from);
    for (let i = 0; i < responses; i++) {
      from = c.length;
      if (random() < 0.6) {
        // 0.1 – 3 s of pcm16 at 24 kHz, in appends of up to 500 ms.
        let ms = 100 + Math.floor(random() * 2900);
        while (ms > 0) {
          const chunk = Math.min(ms, 500);
          const bytes = Buffer.alloc(chunk * 48);
          for (let b = 0; b < bytes.length; b += 64) bytes[b] = Math.floor(random() * 256);
          c.send({ type: 'input_audio_buffer.append', audio: bytes.toString('base64') });
          ms -= chunk;
        }
        c.send({ type: 'input_audio_buffer.commit' });
        await c.next((e) => e.type === 'input_audio_buffer.committed' || e.type === 'error', from);
      } else {
        const words = Array.from({ length: 1 + Math.floor(random() * 40) }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ');
        c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: words }] } });
        await c.next((e) => e.type === 'conversation.item.added' || e.type === 'conversation.item.created' || e.type === 'error', from);
      }
      from = c.length;
      c.send({ type: 'response.create', response: { output_modalities: [random() < 0.5 ? 'audio' : 'text'] } });
      if (random() < 0.1) {
        await c.next((e) => e.type === 'response.created', from);
        c.send({ type: 'response.cancel' });
      }
      const done = await c.next((e) => e.type === 'response.done', from);
      out.responses++;
      if ((done.response as { status?: string } | undefined)?.status === 'cancelled') out.cancelled++;
    }
    await c.close();
    out.ok = true;
  } catch (err) {
    out.error = err instanceof Error ? err.message : String(err);
    c?.ws.terminate();
  }
  return out;
}

// ---- reconciliation --------------------------------------------------------------------------

const FIELDS = ['responses', 'input_text', 'input_audio', 'input_image', 'cached_text', 'cached_audio', 'cached_image', 'output_text', 'output_audio'] as const;
type Field = (typeof FIELDS)[number];
type Book = Record<Field, number> & { cost: bigint; sessions: number };

const emptyBook = (): Book => ({ responses: 0, input_text: 0, input_audio: 0, input_image: 0, cached_text: 0, cached_audio: 0, cached_image: 0, output_text: 0, output_audio: 0, cost: 0n, sessions: 0 });

function fromSim(t: SimTotals): Record<Field, number> {
  return {
    responses: t.responses,
    input_text: t.input_text_tokens,
    input_audio: t.input_audio_tokens,
    input_image: t.input_image_tokens,
    cached_text: t.cached_text_tokens,
    cached_audio: t.cached_audio_tokens,
    cached_image: t.cached_image_tokens,
    output_text: t.output_text_tokens,
    output_audio: t.output_audio_tokens,
  };
}

interface LedgerSessionRow {
  session_id: string;
  user_id: string;
  responses: string;
  estimated: string;
  input_text: string;
  input_audio: string;
  input_image: string;
  cached_text: string;
  cached_audio: string;
  cached_image: string;
  output_text: string;
  output_audio: string;
  cost: string;
}

function usd(nanos: bigint): string {
  const neg = nanos < 0n;
  const n = neg ? -nanos : nanos;
  return `${neg ? '-' : ''}$${n / 1_000_000_000n}.${(n % 1_000_000_000n).toString().padStart(9, '0').slice(0, 6)}`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')).join('\n');
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const random = prng(o.seed);
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-soak-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    UPSTREAM_PROVIDER: 'simulator',
    DATABASE_URL: `sqlite:${path.join(dir, 'relay.db')}`,
    SPOOL_DIR: path.join(dir, 'spool'),
    PRICES_FILE: path.resolve(__dirname, '..', 'config', 'prices.json'),
    MODEL_LIFECYCLE_FILE: path.resolve(__dirname, '..', 'config', 'model-lifecycle.json'),
    RELAY_ADMIN_TOKEN: ADMIN_TOKEN,
    RELAY_TOKEN_SECRET: 'soak-token-secret-0123456789abcdef0123456789',
    LOG_LEVEL: 'error',
    PORT: '0',
    HOST: '127.0.0.1',
    PING_INTERVAL_MS: '0',
    // The soak measures the books, not the admission limits.
    MAX_SESSIONS_PER_USER: '100000',
    MAX_SESSIONS_PER_KEY: '100000',
    CONNECTIONS_PER_MINUTE_PER_USER: '100000',
  });
  let relay: Relay | null = null;
  let exitCode = 1;
  try {
    relay = await createRelay(config, { logger: createLogger('error') });
    const r = relay;
    const baseUrl = (await r.listen()).replace(/\/+$/, '');
    const wsUrl = `${baseUrl.replace(/^http/, 'ws')}/v1/realtime`;
    const sim = r.services.simulator;
    if (!sim) throw new Error('the relay did not start its simulator');

    const keys: string[] = [];
    for (let u = 0; u < o.users; u++) {
      const res = await r.app.inject({ method: 'POST', url: '/admin/keys', headers: { authorization: `Bearer ${ADMIN_TOKEN}` }, payload: { user: `user-${String(u + 1).padStart(2, '0')}`, scopes: ['realtime'] } });
      if (res.statusCode !== 201) throw new Error(`POST /admin/keys answered ${res.statusCode}: ${res.body}`);
      keys.push((JSON.parse(res.body) as { key: string }).key);
    }

    console.log(`soak: ${o.sessions} sessions × ${o.responses} responses, ${o.users} users, concurrency ${o.concurrency}, seed ${o.seed}`);
    const t0 = Date.now();
    let next = 0;
    let finished = 0;
    const outcomes: SessionOutcome[] = [];
    const progress = setInterval(() => console.log(`  … ${finished}/${o.sessions} sessions done, ${sim.stats.responseDoneSent} responses (${Math.round((Date.now() - t0) / 1000)} s)`), 10_000);
    await Promise.all(
      Array.from({ length: Math.min(o.concurrency, o.sessions) }, async () => {
        while (next < o.sessions) {
          const i = next++;
          // Each session draws from its own stream, so the turns do not depend on scheduling.
          const outcome = await runSession(wsUrl, keys[i % o.users]!, o.responses, prng(Math.floor(random() * 2 ** 32)));
          outcomes.push(outcome);
          finished++;
        }
      }),
    );
    clearInterval(progress);
    const elapsedS = (Date.now() - t0) / 1000;

    // Every session ends on both legs and its rows reach the ledger before the books are read.
    const deadline = Date.now() + 15_000;
    const countRows = async (): Promise<number> =>
      Number((await r.services.db.query<{ n: string }>("SELECT CAST(COUNT(*) AS TEXT) AS n FROM usage_ledger WHERE response_id NOT LIKE 'transcription:%'"))[0]?.n ?? 0);
    while ((r.services.sessions.size > 0 || (await countRows()) < sim.stats.responseDoneSent) && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 50));
    }

    const sum = (c: string): string => `CAST(COALESCE(SUM(${c}), 0) AS TEXT)`;
    const rows = await r.services.db.query<LedgerSessionRow>(
      `SELECT session_id, user_id, CAST(COUNT(*) AS TEXT) AS responses, ${sum('CASE WHEN estimated THEN 1 ELSE 0 END')} AS estimated,
              ${sum('input_text_tokens')} AS input_text, ${sum('input_audio_tokens')} AS input_audio, ${sum('input_image_tokens')} AS input_image,
              ${sum('cached_text_tokens')} AS cached_text, ${sum('cached_audio_tokens')} AS cached_audio, ${sum('cached_image_tokens')} AS cached_image,
              ${sum('output_text_tokens')} AS output_text, ${sum('output_audio_tokens')} AS output_audio, ${sum('cost_nanos')} AS cost
       FROM usage_ledger WHERE response_id NOT LIKE 'transcription:%' GROUP BY session_id, user_id`,
    );

    const ledger = new Map<string, Book>();
    const upstream = new Map<string, Book>();
    const userOfSession = new Map<string, string>();
    let estimated = 0;
    for (const row of rows) {
      userOfSession.set(row.session_id, row.user_id);
      const b = ledger.get(row.user_id) ?? emptyBook();
      for (const f of FIELDS) b[f] += Number(row[f]);
      b.cost += BigInt(row.cost);
      b.sessions++;
      estimated += Number(row.estimated);
      ledger.set(row.user_id, b);
    }
    const price = r.services.metering.prices.priceFor('simulator', MODEL, new Date());
    if (!price) throw new Error(`no price for ${MODEL}`);
    let unattributed = 0;
    for (const [sessionId, totals] of sim.stats.usageByClientRequestId) {
      const user = userOfSession.get(sessionId);
      if (!user) {
        unattributed++;
        continue;
      }
      const b = upstream.get(user) ?? emptyBook();
      const t = fromSim(totals);
      for (const f of FIELDS) b[f] += t[f];
      // Cost is linear in the tokens (integer nano-dollars per token), so billing the
      // per-session sums at the price gives the exact expected cost.
      const usage: TokenUsage = { ...emptyUsage(), ...Object.fromEntries(FIELDS.filter((f) => f !== 'responses').map((f) => [f, t[f]])) };
      b.cost += costOf(usage, price).nanos;
      b.sessions++;
      upstream.set(user, b);
    }

    const users = [...new Set([...ledger.keys(), ...upstream.keys()])].sort();
    const header = ['user', 'sessions', 'responses (ledger / upstream)', 'input tokens (ledger / upstream)', 'output tokens (ledger / upstream)', 'cost (ledger / upstream)', ''];
    const lines: string[][] = [header];
    let mismatches = 0;
    const total = { l: emptyBook(), u: emptyBook() };
    const cell = (a: number | string, b: number | string): string => `${a} / ${b}`;
    for (const user of users) {
      const l = ledger.get(user) ?? emptyBook();
      const u = upstream.get(user) ?? emptyBook();
      const same = FIELDS.every((f) => l[f] === u[f]) && l.cost === u.cost;
      if (!same) mismatches++;
      for (const f of FIELDS) {
        total.l[f] += l[f];
        total.u[f] += u[f];
      }
      total.l.cost += l.cost;
      total.u.cost += u.cost;
      total.l.sessions += l.sessions;
      const input = (b: Book): number => b.input_text + b.input_audio + b.input_image;
      const output = (b: Book): number => b.output_text + b.output_audio;
      lines.push([user, String(l.sessions), cell(l.responses, u.responses), cell(input(l), input(u)), cell(output(l), output(u)), cell(usd(l.cost), usd(u.cost)), same ? 'match' : 'MISMATCH']);
    }
    // The simulator's own grand totals, independent of the per-session attribution.
    const grand = fromSim(sim.stats.usageTotals);
    const totalsMatch = FIELDS.every((f) => total.l[f] === grand[f] && total.u[f] === grand[f]) && total.l.cost === total.u.cost;
    const sumIn = (b: Record<Field, number>): number => b.input_text + b.input_audio + b.input_image;
    const sumOut = (b: Record<Field, number>): number => b.output_text + b.output_audio;
    lines.push(['TOTAL', String(total.l.sessions), cell(total.l.responses, grand.responses), cell(sumIn(total.l), sumIn(grand)), cell(sumOut(total.l), sumOut(grand)), cell(usd(total.l.cost), usd(total.u.cost)), totalsMatch ? 'match' : 'MISMATCH']);

    const failed = outcomes.filter((x) => !x.ok);
    const cancelled = outcomes.reduce((n, x) => n + x.cancelled, 0);
    console.log(`\nran ${outcomes.length} sessions in ${elapsedS.toFixed(1)} s: ${outcomes.reduce((n, x) => n + x.responses, 0)} responses (${cancelled} cancelled), ${failed.length} failed sessions`);
    for (const f of failed.slice(0, 5)) console.log(`  failed: ${f.error ?? '?'}`);
    console.log(`\n${table(lines)}\n`);
    console.log('per category (ledger = upstream):');
    console.log(`  ${FIELDS.map((f) => `${f} ${total.l[f]}${total.l[f] === grand[f] ? '' : ` ≠ ${grand[f]}`}`).join(', ')}`);
    console.log(`  estimated rows ${estimated}, upstream sessions with usage but no ledger row ${unattributed}`);
    const ok = mismatches === 0 && totalsMatch && failed.length === 0 && estimated === 0 && unattributed === 0;
    console.log(ok ? '\nRECONCILED: the ledger equals the upstream, exactly, per user and in total.' : `\nNOT RECONCILED: ${mismatches} user(s) differ${totalsMatch ? '' : ', totals differ'}.`);
    exitCode = ok ? 0 : 1;
  } finally {
    await relay?.shutdown();
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
