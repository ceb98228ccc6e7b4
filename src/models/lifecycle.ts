/**
 * Model lifecycle: which upstream models are deprecated (a shutdown date announced) or shut
 * down, per provider, from a file in config/ (MODEL_LIFECYCLE_FILE). Dates live in data, never
 * in code, with their sources in the file's `$comment`.
 */
import { readFileSync } from 'node:fs';
import Ajv from 'ajv';

export type ModelState =
  | { state: 'active' }
  | { state: 'deprecated'; shutdown: Date; replacement: string | null }
  | { state: 'shutdown'; shutdown: Date; replacement: string | null };

export interface LifecycleEntry {
  provider: string;
  model: string;
  shutdown: Date;
  replacement: string | null;
}

export class LifecycleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LifecycleError';
  }
}

const schema = {
  type: 'object',
  required: ['providers'],
  additionalProperties: false,
  properties: {
    $comment: {},
    providers: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['models'],
        properties: {
          $comment: {},
          models: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['model', 'shutdown_date'],
              properties: {
                $comment: {},
                model: { type: 'string', minLength: 1 },
                shutdown_date: { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$' },
                replacement: { type: ['string', 'null'], minLength: 1 },
              },
            },
          },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: false }).compile(schema);

interface RawFile {
  providers: Record<string, { models: { model: string; shutdown_date: string; replacement?: string | null }[] }>;
}

export class ModelLifecycle {
  private readonly byProvider = new Map<string, Map<string, LifecycleEntry>>();

  constructor(raw: unknown) {
    if (!validate(raw)) {
      const e = validate.errors?.[0];
      throw new LifecycleError(`invalid lifecycle file at ${e?.instancePath || '/'}: ${e?.message ?? 'invalid'}`);
    }
    for (const [provider, p] of Object.entries((raw as RawFile).providers)) {
      const models = new Map<string, LifecycleEntry>();
      for (const m of p.models) {
        const shutdown = new Date(`${m.shutdown_date}T00:00:00Z`);
        if (Number.isNaN(shutdown.getTime())) throw new LifecycleError(`invalid shutdown_date ${m.shutdown_date} for ${m.model}`);
        if (models.has(m.model)) throw new LifecycleError(`${provider}/${m.model} is listed twice`);
        models.set(m.model, { provider, model: m.model, shutdown, replacement: m.replacement ?? null });
      }
      this.byProvider.set(provider, models);
    }
  }

  static load(file: string): ModelLifecycle {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new LifecycleError(`cannot read lifecycle file ${file}: ${(err as Error).message}`);
    }
    return new ModelLifecycle(raw);
  }

  /** A model's state at a moment; models the file does not list are active. */
  stateOf(provider: string, model: string, at: Date): ModelState {
    const e = this.byProvider.get(provider)?.get(model);
    if (!e) return { state: 'active' };
    return { state: at.getTime() >= e.shutdown.getTime() ? 'shutdown' : 'deprecated', shutdown: e.shutdown, replacement: e.replacement };
  }

  /** Providers the file lists. */
  providers(): string[] {
    return [...this.byProvider.keys()];
  }

  /** Every listed model of a provider, for the start-up warning and `prices check`. */
  entries(provider: string): LifecycleEntry[] {
    return [...(this.byProvider.get(provider)?.values() ?? [])];
  }
}

/** `YYYY-MM-DD` of a shutdown date, for messages. */
export const day = (d: Date): string => d.toISOString().slice(0, 10);
