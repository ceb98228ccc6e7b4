import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, scratch } from './support';

const ROOT = path.resolve(__dirname, '..', '..');
const TSX = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const ENTRY = path.join(ROOT, 'src', 'cli', 'index.ts');

describe('realtime-relay command dispatch', () => {
  const s = scratch();
  afterAll(() => s.cleanup());

  it.each([
    [['--help'], /^Usage: realtime-relay <command>/],
    [['-h'], /^Usage: realtime-relay <command>/],
    [['help'], /^Usage: realtime-relay <command>/],
    [['serve', '--help'], /^Usage: realtime-relay serve\n/],
    [['keys', '--help'], /^Usage: realtime-relay keys <subcommand>/],
    [['keys', 'help'], /^Usage: realtime-relay keys <subcommand>/],
    [['keys', 'create', '--help'], /^Usage: realtime-relay keys create /],
    [['keys', 'create', '--bogus', '-h'], /^Usage: realtime-relay keys create /],
    [['keys', 'list', '--help'], /^Usage: realtime-relay keys list /],
    [['keys', 'revoke', '--help'], /^Usage: realtime-relay keys revoke /],
    [['usage', '--help'], /^Usage: realtime-relay usage /],
    [['prices', '--help'], /^Usage: realtime-relay prices <subcommand>/],
    [['prices', 'check', '--help'], /^Usage: realtime-relay prices check /],
    [['help', 'keys', 'create'], /^Usage: realtime-relay keys create /],
  ])('%j prints help on stdout and exits 0', async (argv, help) => {
    // An invalid configuration must not get in the way of reading the help.
    const r = await cli(argv, { DATABASE_URL: 'mysql://nowhere' });
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(help);
    expect(r.out).toMatch(/-h, --help|--help' for/);
  });

  it('lists every command in the main help', async () => {
    const { out } = await cli(['--help'], {});
    for (const command of ['serve', 'keys', 'usage', 'prices check']) expect(out).toMatch(new RegExp(`^ {2}${command} `, 'm'));
  });

  it.each([
    [['frobnicate'], /^realtime-relay: unknown command 'frobnicate'\n/],
    [[], /^Usage: realtime-relay <command>/],
    [['keys'], /^Usage: realtime-relay keys <subcommand>/],
    [['prices'], /^Usage: realtime-relay prices <subcommand>/],
    [['serve', '--port', '80'], /^realtime-relay serve: Unknown option '--port'/],
  ])('%j is a usage error: help or message on stderr, exit 2', async (argv, message) => {
    const r = await cli(argv, s.env);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
  });

  it.each([
    [['keys', 'list']],
    [['keys', 'create', '--user', 'u', '--scopes', 'usage']],
    [['keys', 'revoke', '0123456789abcdef']],
    [['usage', '--user', 'u']],
    [['prices', 'check']],
  ])('%j exits 78 on an invalid configuration', async (argv) => {
    const r = await cli(argv, { ...s.env, DATABASE_URL: 'mysql://nowhere' });
    expect(r.code).toBe(78);
    expect(r.out).toBe('');
    expect(r.err).toMatch(/: configuration error: Invalid setting DATABASE_URL/);
  });

  it('exits 78 when production settings are missing', async () => {
    const r = await cli(['keys', 'list'], { ...s.env, NODE_ENV: 'production' });
    expect(r.code).toBe(78);
    expect(r.err).toMatch(/Missing setting UPSTREAM_API_KEY/);
  });

  it('exits 1 when the database cannot be opened', async () => {
    const blocker = path.join(s.dir, 'not-a-directory');
    writeFileSync(blocker, '');
    const r = await cli(['keys', 'list'], { ...s.env, DATABASE_URL: `sqlite:${path.join(blocker, 'relay.db')}` });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^realtime-relay keys list: /);
  });
});

/** The real entry point, as `npx tsx src/cli/index.ts` and the bin run it: exit codes and .env. */
describe('realtime-relay entry point (spawned)', () => {
  const s = scratch();
  afterAll(() => s.cleanup());

  function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
    // Only what a shell would pass: no DATABASE_URL or the like leaking in from the test runner.
    const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, NODE_ENV: 'test' };
    return new Promise((resolve) => {
      execFile(TSX, [ENTRY, ...args], { cwd: s.dir, env: { ...base, ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, out: stdout, err: stderr });
      });
    });
  }

  it('reads DATABASE_URL from .env in the working directory', async () => {
    writeFileSync(path.join(s.dir, '.env'), 'DATABASE_URL=sqlite:./from-dotenv.db\n');
    const r = await run(['keys', 'create', '--user', 'ops', '--scopes', 'admin', '--json']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ user: 'ops', scopes: ['admin'], key: expect.stringMatching(/^rk_/) });
    expect(existsSync(path.join(s.dir, 'from-dotenv.db'))).toBe(true);
  });

  it('exits 2 on an unknown command and 78 on an invalid configuration', async () => {
    expect(await run(['frobnicate'])).toMatchObject({ code: 2, out: '' });
    expect(await run(['keys', 'list'], { DATABASE_URL: 'mysql://nowhere' })).toMatchObject({ code: 78, err: expect.stringMatching(/Invalid setting DATABASE_URL/) });
  });
});
