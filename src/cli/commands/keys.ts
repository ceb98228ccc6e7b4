/**
 * `realtime-relay keys create|list|revoke`: API key administration straight on the database,
 * for bootstrapping (the first admin key) and for operators without an admin token at hand.
 * It goes through ApiKeyStore, like the admin API, so keys made here are indistinguishable.
 */
import { API_KEY_ID_PATTERN_SOURCE, ApiKeyStore, apiKeyView, type ApiKeyRecord } from '../../auth/api-keys';
import { SCOPES, type Scope } from '../../auth/principal';
import { asCommand, CliFailure, EXIT, parseCommand, required, UsageError, wantsHelp, type CliIo } from '../context';
import { withRelayDatabase } from '../database';
import { fields, isoSeconds, json, table } from '../format';

export const KEYS_HELP = `Usage: realtime-relay keys <subcommand> [options]

Manage relay API keys (rk_…) directly in the database named by DATABASE_URL.

Subcommands:
  create    Create a key and print its secret (shown only once)
  list      List keys (never their secrets)
  revoke    Revoke a key by id

Run 'realtime-relay keys <subcommand> --help' for its options.
`;

export const KEYS_CREATE_HELP = `Usage: realtime-relay keys create --user USER --scopes SCOPES [options]

Creates an API key and prints it. The secret is shown only this once; the database keeps a hash.

Options:
  --user USER          User the key acts as (required)
  --tenant TENANT      Tenant of that user
  --scopes LIST        Comma-separated, from: ${SCOPES.join(', ')} (required)
  --name NAME          A label for people (e.g. "web frontend")
  --expires-in DUR     Lifetime: a number and a unit s, m, h, d or w (e.g. 30d, 12h); default never
  --json               Print the key record and secret as JSON
  -h, --help           Show this help
`;

export const KEYS_LIST_HELP = `Usage: realtime-relay keys list [options]

Lists API keys, newest first.

Options:
  --user USER          Only this user's keys
  --tenant TENANT      Only this tenant's keys
  --limit N            At most N keys (1-1000, default 100)
  --json               Print JSON (the admin API's key objects)
  -h, --help           Show this help
`;

export const KEYS_REVOKE_HELP = `Usage: realtime-relay keys revoke <id> [--json]

Revokes an API key at once, on every relay instance sharing the database. Revoking a revoked
key changes nothing and succeeds. Exit 1 when no key has that id.

Options:
  --json               Print the revoked key as JSON
  -h, --help           Show this help
`;

const KEY_ID = new RegExp(API_KEY_ID_PATTERN_SOURCE);
const NAME_MAX = 256;
const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
// Past this, Date arithmetic and ISO rendering stop being exact; no key needs to outlive it.
const MAX_LIFETIME_MS = 100 * 365 * 86_400_000;

/** "30d" → milliseconds. A bare number is refused: seconds and days are both plausible readings. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhdw])$/.exec(text.trim());
  const ms = m ? Number(m[1]) * UNIT_MS[m[2]] : Number.NaN;
  if (!m || !Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_LIFETIME_MS) {
    throw new UsageError(`--expires-in must be a positive number with a unit s, m, h, d or w (e.g. 30d), got '${text}'`);
  }
  return ms;
}

function parseScopes(text: string): Scope[] {
  const list = text.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = list.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (list.length === 0 || unknown.length > 0) {
    const what = unknown.length > 0 ? `unknown scope ${unknown.map((s) => `'${s}'`).join(', ')}` : 'no scope given';
    throw new UsageError(`--scopes: ${what}; choose from ${SCOPES.join(', ')}`);
  }
  return [...new Set(list)] as Scope[];
}

function checkName(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '' || value.length > NAME_MAX) throw new UsageError(`${option} must be 1-${NAME_MAX} characters`);
  return value;
}

const view = apiKeyView;

function status(r: ApiKeyRecord, now: number): string {
  if (r.revokedAt !== null) return 'revoked';
  if (r.expiresAt !== null && r.expiresAt <= now) return 'expired';
  return 'active';
}

async function create(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(KEYS_CREATE_HELP);
    return EXIT.ok;
  }
  const { values } = parseCommand(argv, {
    options: {
      user: { type: 'string' },
      tenant: { type: 'string' },
      scopes: { type: 'string' },
      name: { type: 'string' },
      'expires-in': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const user = checkName(required(values.user, '--user'), '--user');
  const tenant = checkName(values.tenant, '--tenant');
  const name = checkName(values.name, '--name');
  const scopes = parseScopes(required(values.scopes, '--scopes'));
  const lifetime = values['expires-in'] === undefined ? undefined : parseDuration(values['expires-in']);

  // Whole seconds, like keys made through the admin API, so the expiry printed is the exact one.
  const expiresAt = lifetime === undefined ? undefined : Math.floor((Date.now() + lifetime) / 1000) * 1000;
  const created = await withRelayDatabase(io, (db) => new ApiKeyStore(db).create({ user, tenant, scopes, name, expiresAt }));
  const r = created.record;
  if (values.json) {
    io.stdout(json({ ...view(r), key: created.key }));
    return EXIT.ok;
  }
  io.stdout(
    `Created API key ${r.id}.\n` +
      fields([
        ['user', r.user ?? '-'],
        ['tenant', r.tenant ?? '-'],
        ['scopes', r.scopes.join(',')],
        ['name', r.name ?? '-'],
        ['expires', r.expiresAt === null ? 'never' : isoSeconds(r.expiresAt)],
      ]) +
      `\nThe key, shown only this once (the relay keeps only a hash of it):\n\n${created.key}\n`,
  );
  return EXIT.ok;
}

async function list(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(KEYS_LIST_HELP);
    return EXIT.ok;
  }
  const { values } = parseCommand(argv, {
    options: {
      user: { type: 'string' },
      tenant: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  let limit = 100;
  if (values.limit !== undefined) {
    limit = Number(values.limit);
    if (!/^\d+$/.test(values.limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit must be an integer from 1 to 1000, got '${values.limit}'`);
  }
  const user = checkName(values.user, '--user');
  const tenant = checkName(values.tenant, '--tenant');
  const keys = await withRelayDatabase(io, (db) => new ApiKeyStore(db).list({ user, tenant, limit }));
  if (values.json) {
    io.stdout(json(keys.map(view)));
    return EXIT.ok;
  }
  if (keys.length === 0) {
    io.stdout('No API keys.\n');
    return EXIT.ok;
  }
  const now = Date.now();
  io.stdout(
    table(
      [{ header: 'ID' }, { header: 'USER' }, { header: 'TENANT' }, { header: 'SCOPES' }, { header: 'NAME' }, { header: 'CREATED' }, { header: 'EXPIRES' }, { header: 'STATUS' }],
      keys.map((k) => [
        k.id,
        k.user ?? '-',
        k.tenant ?? '-',
        k.scopes.join(','),
        k.name ?? '-',
        isoSeconds(k.createdAt),
        k.expiresAt === null ? 'never' : isoSeconds(k.expiresAt),
        status(k, now),
      ]),
    ),
  );
  // On stderr, so that the table on stdout stays exactly the keys.
  if (keys.length === limit) io.stderr(`(showing the newest ${limit}; raise --limit to see more)\n`);
  return EXIT.ok;
}

async function revoke(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(KEYS_REVOKE_HELP);
    return EXIT.ok;
  }
  const { values, positionals } = parseCommand(argv, {
    options: { json: { type: 'boolean', default: false } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'the key id is required' : 'give exactly one key id');
  const id = positionals[0];
  if (!KEY_ID.test(id)) throw new UsageError(`'${id}' is not a key id (16 hex digits, the part between rk_ and the next _)`);

  const { before, after } = await withRelayDatabase(io, async (db) => {
    const store = new ApiKeyStore(db);
    const previous = await store.get(id);
    return { before: previous, after: previous ? await store.revoke(id) : null };
  });
  if (!before || !after || after.revokedAt === null) throw new CliFailure(`no API key with id ${id}`);
  if (values.json) {
    io.stdout(json(view(after)));
  } else if (before.revokedAt !== null) {
    io.stdout(`API key ${id} was already revoked at ${isoSeconds(before.revokedAt)}.\n`);
  } else {
    io.stdout(`Revoked API key ${id} at ${isoSeconds(after.revokedAt)}.\n`);
  }
  return EXIT.ok;
}

const SUBCOMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = { create, list, revoke };

export async function keysCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) {
    io.stderr(KEYS_HELP);
    return EXIT.usage;
  }
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout(KEYS_HELP);
    return EXIT.ok;
  }
  const run = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!run) throw new UsageError(`unknown subcommand '${sub}' (create, list, revoke)`);
  return asCommand(`keys ${sub}`, () => run(rest, io));
}
