/**
 * `realtime-relay prices check`: validates a price file with the relay's own loader (PriceBook,
 * same JSON schema and money rules) and prints the prices in force at a moment, resolved by
 * the same `priceFor` the relay bills with. Meant for CI on edits to the price file and for an
 * operator wondering what a model costs today.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../config/config';
import { formatUsd } from '../../metering/money';
import { PriceBook, PriceBookError, TOKEN_PRICE_KEYS, type ModelPrice } from '../../metering/prices';
import { day, LifecycleError, ModelLifecycle } from '../../models/lifecycle';
import { asCommand, CliFailure, EXIT, parseCommand, parseDateOption, UsageError, wantsHelp, type CliIo } from '../context';
import { json, table, type Column } from '../format';

export const PRICES_HELP = `Usage: realtime-relay prices <subcommand> [options]

Subcommands:
  check     Validate a price file and print the prices in force

Run 'realtime-relay prices check --help' for its options.
`;

export const PRICES_CHECK_HELP = `Usage: realtime-relay prices check [options]

Validates the price file with the relay's own loader and prints, per provider and model, the
prices in force today (UTC): USD per 1M tokens, and USD per minute for duration-priced models.
Then the model lifecycle: every model with a shutdown date, whether it is deprecated or past
shutdown, its replacement, the MODEL_ALIASES entry serving it, and whether the model and its
replacement are priced. Warns about served models (DEFAULT_MODEL, ALLOWED_MODELS) that are
unpriced or past shutdown without an alias. Exits 1 with the first problem when a file is invalid.

Options:
  --file FILE          Price file to check (default: PRICES_FILE from the environment/.env,
                       else ./config/prices.json)
  --lifecycle FILE     Lifecycle file (default: MODEL_LIFECYCLE_FILE, else
                       ./config/model-lifecycle.json)
  --date DATE          Show the prices in force at this day (YYYY-MM-DD) or ISO timestamp instead
  --json               Print JSON
  -h, --help           Show this help
`;

interface RawPriceFile {
  providers: Record<string, { same_as?: string; models?: { model: string; effective_from: string }[] }>;
}

/** Nano-dollars per token back to the file's unit, USD per 1M tokens: 2500n → "2.5". */
function perMillion(nanosPerToken: bigint): string {
  const whole = nanosPerToken / 1000n;
  const frac = (nanosPerToken % 1000n).toString().padStart(3, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : whole.toString();
}

function perMinute(nanos: bigint): string {
  return formatUsd(nanos).replace(/\.?0+$/, '');
}

interface Row {
  provider: string;
  model: string;
  /** The entry billed: the model's own, or the family/snapshot it resolves to. */
  priced_as: string;
  effective_from: string;
  per_1m_tokens: Record<string, string> | null;
  per_minute: string | null;
}

function toRow(provider: string, model: string, p: ModelPrice): Row {
  let tokens: Record<string, string> | null = null;
  if (p.tokens) {
    tokens = {};
    for (const k of TOKEN_PRICE_KEYS) {
      const v = p.tokens[k];
      if (v !== undefined) tokens[k] = perMillion(v);
    }
  }
  return {
    provider,
    model,
    priced_as: p.model,
    effective_from: p.effectiveFrom.toISOString(),
    per_1m_tokens: tokens,
    per_minute: p.perMinuteNanos === null ? null : perMinute(p.perMinuteNanos),
  };
}

async function check(argv: string[], io: CliIo): Promise<number> {
  if (wantsHelp(argv)) {
    io.stdout(PRICES_CHECK_HELP);
    return EXIT.ok;
  }
  const { values } = parseCommand(argv, {
    options: { file: { type: 'string' }, lifecycle: { type: 'string' }, date: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  if (values.file !== undefined && values.file.trim() === '') throw new UsageError('--file must not be empty');
  const at = values.date === undefined ? new Date() : parseDateOption(values.date, '--date').date;
  // An explicit file needs no relay configuration: CI can check a price file on its own.
  const config = values.file === undefined ? loadConfig(io.env) : null;
  const file = values.file ?? config?.pricing.pricesFile ?? './config/prices.json';

  let book: PriceBook;
  try {
    book = PriceBook.load(file);
  } catch (err) {
    if (err instanceof PriceBookError) throw new CliFailure(`invalid price file: ${err.message}`);
    throw err;
  }
  // Valid by now, so the shape is known; PriceBook resolves prices but does not list model names.
  const raw = JSON.parse(readFileSync(file, 'utf8')) as RawPriceFile;

  const rows: Row[] = [];
  const notYet: { provider: string; model: string; from: string }[] = [];
  const aliases: Record<string, string> = {};
  for (const [provider, def] of Object.entries(raw.providers)) {
    if (def.same_as !== undefined) {
      aliases[provider] = def.same_as;
      continue;
    }
    const names = [...new Set((def.models ?? []).map((m) => m.model))];
    for (const model of names) {
      const price = book.priceFor(provider, model, at);
      if (price) rows.push(toRow(provider, model, price));
      else {
        const first = (def.models ?? []).filter((m) => m.model === model).map((m) => m.effective_from).sort()[0];
        notYet.push({ provider, model, from: first });
      }
    }
  }

  const warnings: string[] = [];
  if (config) {
    const provider = config.upstream.provider;
    const fallback = config.pricing.unpricedPolicy === 'fallback' ? config.pricing.fallbackModel : undefined;
    const served = [...new Set([config.models.default, ...(config.models.allowed ?? [])])];
    for (const model of served) {
      if (book.priceFor(provider, model, at)) continue;
      const fb = fallback === undefined ? null : book.priceFor(provider, fallback, at);
      warnings.push(
        fb
          ? `model ${model} has no price for provider ${provider}: billed at ${fallback}'s prices (UNPRICED_MODEL_POLICY=fallback)`
          : `model ${model} has no price for provider ${provider}: the relay will refuse sessions on it`,
      );
    }
  }

  const lifecycleFile = values.lifecycle ?? config?.models.lifecycleFile ?? './config/model-lifecycle.json';
  let lifecycle: ModelLifecycle;
  try {
    lifecycle = ModelLifecycle.load(lifecycleFile);
  } catch (err) {
    if (err instanceof LifecycleError) throw new CliFailure(`invalid lifecycle file: ${err.message}`);
    throw err;
  }
  const modelAliases = config?.models.aliases ?? {};
  const lifecycleRows = lifecycle.providers().flatMap((provider) =>
    lifecycle.entries(provider).map((e) => {
      const state = lifecycle.stateOf(provider, e.model, at).state;
      const alias = modelAliases[e.model] ?? null;
      return {
        provider,
        model: e.model,
        state,
        shutdown_date: day(e.shutdown),
        replacement: e.replacement,
        alias,
        priced: book.priceFor(provider, e.model, at) !== null,
        replacement_priced: e.replacement === null ? null : book.priceFor(provider, e.replacement, at) !== null,
      };
    }),
  );
  if (config) {
    const provider = config.upstream.provider;
    for (const model of [...new Set([config.models.default, ...(config.models.allowed ?? [])])]) {
      const st = lifecycle.stateOf(provider, model, at);
      if (st.state === 'shutdown' && !modelAliases[model]) warnings.push(`model ${model} is past its shutdown date (${day(st.shutdown)}) for provider ${provider}: the relay will refuse sessions on it (set MODEL_ALIASES to serve a replacement)`);
    }
  }

  if (values.json) {
    io.stdout(json({ file, valid: true, version: book.version, at: at.toISOString(), prices: rows, same_as: aliases, not_yet_effective: notYet, lifecycle_file: lifecycleFile, lifecycle: lifecycleRows, warnings }));
    return EXIT.ok;
  }
  const columns: Column[] = [
    { header: 'PROVIDER' },
    { header: 'MODEL' },
    { header: 'EFFECTIVE_FROM' },
    ...TOKEN_PRICE_KEYS.map((k): Column => ({ header: k.toUpperCase(), align: 'right' })),
    { header: 'PER_MINUTE', align: 'right' },
  ];
  const cells = rows.map((r) => [
    r.provider,
    r.priced_as === r.model ? r.model : `${r.model} (as ${r.priced_as})`,
    r.effective_from.replace(/T00:00:00\.000Z$/, '').replace(/\.000Z$/, 'Z'),
    ...TOKEN_PRICE_KEYS.map((k) => r.per_1m_tokens?.[k] ?? '-'),
    r.per_minute ?? '-',
  ]);
  let out = `${file}: valid, version ${book.version}\n`;
  out += `Prices in force at ${at.toISOString()} (USD per 1M tokens; PER_MINUTE in USD per minute of audio; - = no price of its own):\n\n`;
  out += table(columns, cells);
  for (const [provider, target] of Object.entries(aliases)) out += `${provider}: same prices as ${target}\n`;
  for (const n of notYet) out += `${n.provider} ${n.model}: not in force yet (from ${n.from})\n`;
  out += `\nModel lifecycle (${lifecycleFile}) at ${at.toISOString()}:\n`;
  for (const l of lifecycleRows) {
    const when = l.state === 'shutdown' ? `PAST SHUTDOWN since ${l.shutdown_date}` : `deprecated, shuts down ${l.shutdown_date}`;
    const serving = l.state === 'shutdown' ? (l.alias ? `; served as ${l.alias} (MODEL_ALIASES)` : '; sessions refused') : '';
    const replacement = l.replacement ? `; replacement ${l.replacement}${l.replacement_priced ? '' : ' (UNPRICED)'}` : '';
    out += `${l.provider} ${l.model}: ${when}${l.priced ? '' : ' (UNPRICED)'}${replacement}${serving}\n`;
  }
  io.stdout(out);
  for (const w of warnings) io.stderr(`warning: ${w}\n`);
  return EXIT.ok;
}

export async function pricesCommand(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined) {
    io.stderr(PRICES_HELP);
    return EXIT.usage;
  }
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout(PRICES_HELP);
    return EXIT.ok;
  }
  if (sub !== 'check') throw new UsageError(`unknown subcommand '${sub}' (check)`);
  return asCommand('prices check', () => check(rest, io));
}
