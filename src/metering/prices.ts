import { readFileSync } from 'node:fs';
import Ajv from 'ajv';
import { MoneyError, minutePriceNanos, tokenPriceNanos } from './money';

export const TOKEN_PRICE_KEYS = [
  'text_in',
  'text_cached_in',
  'text_out',
  'audio_in',
  'audio_cached_in',
  'audio_out',
  'image_in',
  'image_cached_in',
] as const;
export type TokenPriceKey = (typeof TOKEN_PRICE_KEYS)[number];

/** Nano-dollars per token for each category the entry prices; absent keys are unpriced. */
export type TokenPrices = Partial<Record<TokenPriceKey, bigint>>;

/** One resolved price entry. */
export interface ModelPrice {
  provider: string;
  /** The entry's model name, which may be the family of the requested snapshot. */
  model: string;
  effectiveFrom: Date;
  /** The price file's version, recorded on every ledger row. */
  version: string;
  tokens: TokenPrices | null;
  /** Nano-dollars per minute of audio, for duration-priced transcription. */
  perMinuteNanos: bigint | null;
}

export class PriceBookError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PriceBookError';
  }
}

const tokenPriceProps = Object.fromEntries(TOKEN_PRICE_KEYS.map((k) => [k, { type: 'number', minimum: 0 }]));

const schema = {
  type: 'object',
  required: ['version', 'providers'],
  additionalProperties: false,
  properties: {
    $comment: {},
    version: { type: 'string', minLength: 1 },
    providers: {
      type: 'object',
      minProperties: 1,
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          $comment: {},
          same_as: { type: 'string', minLength: 1 },
          models: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['model', 'effective_from'],
              anyOf: [{ required: ['per_1m_tokens'] }, { required: ['per_minute'] }],
              properties: {
                $comment: {},
                model: { type: 'string', minLength: 1 },
                effective_from: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}(T\\d{2}:\\d{2}(:\\d{2}(\\.\\d+)?)?(Z|[+-]\\d{2}:\\d{2}))?$' },
                per_1m_tokens: {
                  type: 'object',
                  additionalProperties: false,
                  minProperties: 1,
                  properties: tokenPriceProps,
                },
                per_minute: { type: 'number', minimum: 0 },
              },
            },
          },
        },
        oneOf: [{ required: ['same_as'] }, { required: ['models'] }],
      },
    },
  },
} as const;

interface RawEntry {
  model: string;
  effective_from: string;
  per_1m_tokens?: Partial<Record<TokenPriceKey, number>>;
  per_minute?: number;
}

interface RawFile {
  version: string;
  providers: Record<string, { same_as?: string; models?: RawEntry[] }>;
}

const ajv = new Ajv({ allErrors: false, strict: false });
const validate = ajv.compile<RawFile>(schema);

const SNAPSHOT_RE = /^(.+)-(\d{4}-\d{2}-\d{2})$/;

/**
 * The price table, loaded once at start. `priceFor` resolves a (provider, model, moment) to the
 * entry that applied then:
 *   1. the model's own entries;
 *   2. a dated snapshot (`gpt-realtime-2025-08-28`) falls back to its family (`gpt-realtime`),
 *      and, when the family has only dated entries, to its newest snapshot not newer than the
 *      requested one;
 *   3. an undated alias (`gpt-4o-realtime-preview`) takes its newest snapshot priced at that
 *      moment, as the alias pointed there upstream;
 * and among a model's entries, the newest whose effective_from ≤ the moment. Anything else is
 * unknown (null): the caller refuses the model or bills it at the configured fallback model.
 */
export class PriceBook {
  private constructor(
    readonly version: string,
    private readonly byProvider: Map<string, Map<string, ModelPrice[]>>,
  ) {}

  static load(file: string): PriceBook {
    let doc: unknown;
    try {
      doc = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new PriceBookError(`cannot read price file ${file}: ${(err as Error).message}`);
    }
    return PriceBook.fromJson(doc, file);
  }

  static fromJson(doc: unknown, source = 'price table'): PriceBook {
    if (!validate(doc)) {
      const e = validate.errors?.[0];
      throw new PriceBookError(`${source}: ${e?.instancePath || '/'} ${e?.message ?? 'is invalid'}`);
    }
    const own = new Map<string, Map<string, ModelPrice[]>>();
    for (const [provider, def] of Object.entries(doc.providers)) {
      if (!def.models) continue;
      const models = new Map<string, ModelPrice[]>();
      def.models.forEach((entry, i) => {
        const where = `${source}: /providers/${provider}/models/${i}`;
        const price = toModelPrice(provider, doc.version, entry, where);
        const list = models.get(entry.model) ?? [];
        if (list.some((p) => p.effectiveFrom.getTime() === price.effectiveFrom.getTime())) {
          throw new PriceBookError(`${where}: a second ${entry.model} entry effective from ${entry.effective_from}`);
        }
        list.push(price);
        models.set(entry.model, list);
      });
      for (const list of models.values()) list.sort((a, b) => b.effectiveFrom.getTime() - a.effectiveFrom.getTime());
      own.set(provider, models);
    }
    const byProvider = new Map<string, Map<string, ModelPrice[]>>(own);
    for (const [provider, def] of Object.entries(doc.providers)) {
      if (!def.same_as) continue;
      const target = own.get(def.same_as);
      if (!target) throw new PriceBookError(`${source}: /providers/${provider}/same_as names ${def.same_as}, which has no models of its own`);
      byProvider.set(provider, target);
    }
    return new PriceBook(doc.version, byProvider);
  }

  providers(): string[] {
    return [...this.byProvider.keys()];
  }

  /** The model names priced for a provider (dated snapshots included), sorted. */
  models(provider: string): string[] {
    return [...(this.byProvider.get(provider)?.keys() ?? [])].sort();
  }

  priceFor(provider: string, model: string, at: Date): ModelPrice | null {
    const models = this.byProvider.get(provider);
    if (!models) return null;
    const t = at.getTime();
    const pick = (name: string): ModelPrice | null => models.get(name)?.find((p) => p.effectiveFrom.getTime() <= t) ?? null;

    const exact = pick(model);
    if (exact) return exact;
    const snapshot = SNAPSHOT_RE.exec(model);
    if (snapshot) return pick(snapshot[1]) ?? this.newestSnapshot(models, snapshot[1], snapshot[2], pick);
    return this.newestSnapshot(models, model, null, pick);
  }

  private newestSnapshot(
    models: Map<string, ModelPrice[]>,
    family: string,
    notAfter: string | null,
    pick: (name: string) => ModelPrice | null,
  ): ModelPrice | null {
    const dates: string[] = [];
    for (const name of models.keys()) {
      const m = SNAPSHOT_RE.exec(name);
      if (m && m[1] === family && (notAfter === null || m[2] <= notAfter)) dates.push(m[2]);
    }
    dates.sort().reverse();
    for (const date of dates) {
      const p = pick(`${family}-${date}`);
      if (p) return p;
    }
    return null;
  }
}

function toModelPrice(provider: string, version: string, entry: RawEntry, where: string): ModelPrice {
  const effectiveFrom = new Date(/T/.test(entry.effective_from) ? entry.effective_from : `${entry.effective_from}T00:00:00Z`);
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(entry.effective_from);
  // Date() rolls 2025-02-30 over into March instead of refusing it.
  if (Number.isNaN(effectiveFrom.getTime()) || (dateOnly && effectiveFrom.toISOString().slice(0, 10) !== entry.effective_from)) {
    throw new PriceBookError(`${where}/effective_from: not a date`);
  }
  let tokens: TokenPrices | null = null;
  try {
    if (entry.per_1m_tokens) {
      tokens = {};
      for (const key of TOKEN_PRICE_KEYS) {
        const v = entry.per_1m_tokens[key];
        if (v !== undefined) tokens[key] = tokenPriceNanos(v);
      }
    }
    const perMinuteNanos = entry.per_minute === undefined ? null : minutePriceNanos(entry.per_minute);
    return { provider, model: entry.model, effectiveFrom, version, tokens, perMinuteNanos };
  } catch (err) {
    if (err instanceof MoneyError) throw new PriceBookError(`${where}: ${err.message}`);
    throw err;
  }
}
