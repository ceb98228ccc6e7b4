import { meteringMigrations } from '../../src/metering';
import { migrate, openDatabase } from '../../src/storage/database';
import { Ledger } from '../../src/storage/ledger';
import { cli, ledgerEntry, scratch } from './support';

interface Report {
  object: string;
  user: string | null;
  tenant: string | null;
  from: string | null;
  to: string | null;
  group_by: string | null;
  data: ({ key: string | null; cost_usd: string } & Record<string, number | string | null>)[];
  total: { cost_usd: string } & Record<string, number | string>;
}

const DAY1 = Date.UTC(2025, 0, 1, 10);
const DAY2 = Date.UTC(2025, 0, 2, 23, 59, 59);
const DAY3 = Date.UTC(2025, 0, 3, 0, 0, 0);

describe('realtime-relay usage', () => {
  const s = scratch();

  beforeAll(async () => {
    const db = await openDatabase(s.env.DATABASE_URL ?? '');
    await migrate(db, meteringMigrations);
    const ledger = new Ledger(db);
    const rows = [
      ledgerEntry({ createdAt: DAY1, usage: { input_text: 100, output_audio: 50 }, costNanos: 1_000_000_001n }),
      ledgerEntry({ createdAt: DAY2, model: 'gpt-realtime-mini', usage: { input_audio: 10, cached_audio: 4 }, costNanos: 2n, estimated: true }),
      ledgerEntry({ createdAt: DAY3, usage: { output_text: 7 }, costNanos: 30n }),
      ledgerEntry({ createdAt: DAY1, user: '=bob', tenant: 'acme', usage: { input_text: 1 }, costNanos: 5n }),
      ledgerEntry({ createdAt: DAY1, user: 'alice', tenant: 'other', costNanos: 999n }),
    ];
    for (const row of rows) expect(await ledger.insert(row)).toBe('inserted');
    await db.close();
  });
  afterAll(() => s.cleanup());

  const report = async (argv: string[]): Promise<Report> => {
    const r = await cli(['usage', ...argv, '--json'], s.env);
    expect(r).toMatchObject({ code: 0, err: '' });
    return JSON.parse(r.out) as Report;
  };

  it('totals one user and tenant as JSON, costs exact to the nano-dollar', async () => {
    const r = await report(['--user', 'alice', '--tenant', 'acme']);
    expect(r).toMatchObject({ object: 'usage.report', user: 'alice', tenant: 'acme', from: null, to: null, group_by: null });
    expect(r.data).toHaveLength(1);
    expect(r.total).toMatchObject({
      responses: 3,
      estimated_responses: 1,
      input_text_tokens: 100,
      input_audio_tokens: 10,
      cached_audio_tokens: 4,
      output_text_tokens: 7,
      output_audio_tokens: 50,
      cost_usd: '1.000000033',
    });
  });

  it('groups by day, and reads --to as a whole UTC day', async () => {
    const r = await report(['--user', 'alice', '--tenant', 'acme', '--group-by', 'day', '--from', '2025-01-01', '--to', '2025-01-02']);
    expect(r.from).toBe('2025-01-01T00:00:00.000Z');
    expect(r.to).toBe('2025-01-03T00:00:00.000Z');
    expect(r.data.map((d) => [d.key, d.responses, d.cost_usd])).toEqual([
      ['2025-01-01', 1, '1.000000001'],
      ['2025-01-02', 1, '0.000000002'],
    ]);
    expect(r.total.cost_usd).toBe('1.000000003');
  });

  it('groups by user across everyone when --user is left out', async () => {
    const r = await report(['--group-by', 'user']);
    expect(r.user).toBeNull();
    // A user id is unique only within its tenant: acme's alice and other's alice are two rows.
    expect(r.data.map((d) => [d.key, d.tenant, d.responses])).toEqual([
      ['=bob', 'acme', 1],
      ['alice', 'acme', 3],
      ['alice', 'other', 1],
    ]);
  });

  it('groups by tenant', async () => {
    const r = await report(['--group-by', 'tenant']);
    expect(Object.fromEntries(r.data.map((d) => [String(d.key), d.responses]))).toEqual({ acme: 4, other: 1 });
  });

  it('prints CSV like the usage API, quoting formula-like cells', async () => {
    const r = await cli(['usage', '--tenant', 'acme', '--group-by', 'user', '--csv'], s.env);
    expect(r).toMatchObject({ code: 0, err: '' });
    const lines = r.out.split('\r\n');
    expect(lines[0]).toBe(
      'user,tenant,responses,estimated_responses,input_text_tokens,input_audio_tokens,input_image_tokens,cached_text_tokens,cached_audio_tokens,cached_image_tokens,output_text_tokens,output_audio_tokens,audio_duration_ms,output_reasoning_tokens,cost_usd',
    );
    expect(lines[1]).toBe("'=bob,acme,1,0,1,0,0,0,0,0,0,0,0,0,0.000000005");
    expect(lines[2]).toBe('alice,acme,3,1,100,10,0,0,4,0,7,50,0,0,1.000000033');
    expect(lines[3]).toBe('');
    expect(lines).toHaveLength(4);
  });

  it('prints an aligned table with a total row by default', async () => {
    const r = await cli(['usage', '--user', 'alice', '--group-by', 'model'], s.env);
    expect(r).toMatchObject({ code: 0, err: '' });
    const lines = r.out.trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s+/)[0])).toEqual(['MODEL', 'gpt-realtime', 'gpt-realtime-mini', 'total']);
    const costEnd = lines[0].length;
    for (const l of lines) expect(l.length).toBe(costEnd);
    expect(lines[3]).toMatch(/\s1\.000001032$/);
  });

  it('answers an empty range with zeros', async () => {
    const r = await report(['--from', '2030-01-01']);
    expect(r.data).toEqual([expect.objectContaining({ key: null, responses: 0, cost_usd: '0.000000000' })]);
  });

  it.each([
    [['--csv', '--json'], /exclude each other/],
    [['--group-by', 'week'], /--group-by must be one of day, model, user/],
    [['--from', '2025-02-30'], /--from must be a date/],
    [['--to', 'yesterday'], /--to must be a date/],
    [['--from', '2025-01-03', '--to', '2025-01-01'], /--from must be before --to/],
    [['--user', ''], /--user must not be empty/],
    [['--users', 'x'], /Unknown option '--users'/],
    [['extra'], /Unexpected argument 'extra'/],
  ])('usage %j is a usage error (exit 2)', async (argv, message) => {
    const r = await cli(['usage', ...argv], s.env);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    expect(r.err).toMatch(message);
    expect(r.err).toMatch(/Run 'realtime-relay usage --help' for usage\.\n$/);
  });
});
