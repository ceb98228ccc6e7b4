/**
 * README's quick start, as a newcomer follows it, in a clean copy of the tree (only the files
 * git knows, no node_modules, no dist, no data): its first command exactly as written (install,
 * build, start, with nothing set but the port), then the request the start printed, pasted into
 * a shell, then a short conversation with the key it made, then that user's usage.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { cleanCopyOfTree } from '../support/dockerfile-runner';
import { delay, TestClient } from '../support/ws-client';
import type { UsageReport } from './helpers/usage';

const REPO = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

/** The shell blocks of README's "Quick start" section, in order. */
function quickStartBlocks(): string[] {
  const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Quick start'), readme.indexOf('\n## ', readme.indexOf('## Quick start') + 1));
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1].trim());
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A fresh user's environment: no NODE_ENV (jest sets test), no relay settings, no npm state. */
function newcomerEnv(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', PORT: String(port), HOST: '127.0.0.1' };
  // CI under Node 24 points node-gyp at Node 24's headers (only the npm registry is reachable).
  if (process.env.npm_config_nodedir) env.npm_config_nodedir = process.env.npm_config_nodedir;
  return env;
}

describe("README's quick start, in order, in a clean copy", () => {
  // npm ci compiles better-sqlite3 from source when its prebuilt binary cannot be downloaded.
  jest.setTimeout(30 * 60 * 1000);
  const work = mkdtempSync(path.join(tmpdir(), 'relay-quickstart-'));
  let child: ChildProcess | undefined;
  afterAll(async () => {
    if (child?.pid && child.exitCode === null) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (err) {
        // ESRCH: the group has already gone (the relay drained and exited) before its exit was seen.
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
      await delay(200);
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('starts, creates a key with the printed credential, holds a conversation and reads the usage', async () => {
    const blocks = quickStartBlocks();
    // Two commands, start first and tests second, then the request the start prints.
    expect(blocks[0]).toBe('npm ci && npm run build && npm start');
    expect(blocks[1]).toBe('npm run test:setup && npm test');
    expect(blocks[2]).toMatch(/^curl -s -X POST http:\/\/localhost:8080\/admin\/keys /);

    cleanCopyOfTree(REPO, work);
    const port = await freePort();
    // Its own process group, so the whole npm → node chain stops with one signal.
    child = spawn('bash', ['-c', blocks[0]], { cwd: work, env: newcomerEnv(port), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));

    // The printed request: from `curl` to the first line that does not continue with a backslash.
    let curl: string | null = null;
    for (let i = 0; i < 25 * 60 * 10 && curl === null; i++) {
      if (child.exitCode !== null) throw new Error(`the first command exited ${child.exitCode}:\n${out.slice(-4000)}`);
      const m = /^ {2}(curl [^\n]*\\\n[^\n]*)$/m.exec(out);
      if (m) curl = m[1];
      else await delay(100);
    }
    if (curl === null) throw new Error(`no request printed:\n${out.slice(-4000)}`);
    expect(out).toMatch(/admin token\s+not set/);
    expect(out).toContain(`ws://localhost:${port}/v1/realtime`);
    expect(out).toContain(`http://localhost:${port}/demo`);

    // Pasted into a shell, as README says.
    const created = await run('bash', ['-c', curl], { env: { PATH: process.env.PATH ?? '' } });
    const { key } = JSON.parse(created.stdout) as { key: string };
    expect(key).toMatch(/^rk_/);

    const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.send({ type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello there' }] } });
    c.send({ type: 'response.create' });
    await c.waitFor('response.done', 15_000);
    c.close();

    let usage: UsageReport | null = null;
    for (let i = 0; i < 50; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      usage = (await res.json()) as UsageReport;
      if (usage.total.responses >= 1) break;
      await delay(100);
    }
    expect(usage?.total.responses).toBe(1);
    expect(Number(usage?.total.cost_usd)).toBeGreaterThan(0);

    // The CLI as README shows it, on the same ledger.
    const report = await run('npx', ['--no-install', 'realtime-relay', 'usage', '--user', 'alice', '--json'], { cwd: work, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' } });
    expect((JSON.parse(report.stdout) as UsageReport).total).toMatchObject({ responses: 1, cost_usd: usage?.total.cost_usd });

    // The SQLite ledger landed where README says, inside the copy.
    expect(out).toContain(`SQLite file ${path.join(work, 'data', 'relay.db')}`);
    // Ctrl-C in the terminal: the whole group gets the signal; the relay drains and says so
    // (npm and bash themselves end by the signal, so their exit code is not the relay's).
    process.kill(-child.pid!, 'SIGINT');
    await new Promise((resolve) => child!.once('exit', resolve));
    expect(out).toMatch(/"msg":"stopped"/);
  });
});
