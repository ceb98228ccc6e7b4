/**
 * Messages about settings that tell the operator what to type: the allowed values of an enum,
 * the expected form of a pattern in words, and the known name closest to a misspelled one.
 * Kept apart from the loader so the loader stays a list of settings.
 */
import type { ErrorObject } from 'ajv';
import { closest, distance } from 'fastest-levenshtein';
import { envSchema } from './env-schema';

/** Patterns of env-schema.ts in words; a pattern missing here falls back to showing the regex. */
const PATTERN_WORDS: Record<string, string> = {
  '^https?://': 'an http:// or https:// URL',
  '^(sqlite:|postgres://|postgresql://)': 'sqlite:<file> (e.g. sqlite:./data/relay.db) or postgres://user:password@host:5432/database',
  '^[A-Za-z0-9-]+$': 'letters, digits and hyphens only (the resource name, not its URL)',
  '^[0-9]+(\\.[0-9]{1,6})?$': 'a USD amount with at most 6 decimals, e.g. 25 or 12.50 (no $ sign)',
  '^rediss?://': 'a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379',
};

/** Settings whose value must never be echoed back in an error (it may be a real secret). */
const SECRET_NAME = /KEY|SECRET|TOKEN|PASSWORD/i;

function shown(setting: string, value: unknown): string {
  if (value === undefined) return '';
  if (SECRET_NAME.test(setting)) return ' (value not shown: it may be a secret)';
  // A database or Redis URL can carry a password: keep the form, drop the credential.
  const text = String(value).replace(/\/\/([^/@\s]*)@/, '//***@');
  return ` (got ${JSON.stringify(text)})`;
}

/** One sentence naming the setting, what is wrong and what would be accepted. */
export function describeSettingError(err: ErrorObject | undefined, raw: Record<string, unknown>): string {
  const setting = err?.instancePath.replace(/^\//, '') || 'configuration';
  const value = raw[setting];
  const params = (err?.params ?? {}) as Record<string, unknown>;
  let expected: string;
  switch (err?.keyword) {
    case 'enum':
      expected = `must be one of: ${(params.allowedValues as unknown[]).map(String).join(', ')}`;
      break;
    case 'pattern': {
      const pattern = String(params.pattern);
      expected = `must be ${PATTERN_WORDS[pattern] ?? `of the form ${pattern}`}`;
      break;
    }
    case 'type':
      expected = params.type === 'integer' ? 'must be a whole number' : params.type === 'boolean' ? 'must be true or false' : `must be a ${String(params.type)}`;
      break;
    case 'minLength':
      expected = `must be at least ${String(params.limit)} characters long`;
      break;
    case 'maxLength':
      expected = `must be at most ${String(params.limit)} characters long`;
      break;
    case 'minimum':
      expected = `must be ${String(params.limit)} or more`;
      break;
    case 'maximum':
      expected = `must be ${String(params.limit)} or less`;
      break;
    default:
      expected = err?.message ?? 'is invalid';
  }
  return `Invalid setting ${setting}: ${expected}${shown(setting, value)}`;
}

const KNOWN = Object.keys(envSchema.properties);
const KNOWN_SET = new Set(KNOWN);
const SETTING_LIKE = /^[A-Z][A-Z0-9_]*$/;

/**
 * Environment names that look like a misspelling of a known setting (RELAY_ADMIN_TOKN), each
 * with the warning to print. Tolerance grows with the name: one edit below 10 characters, two
 * from there, so unrelated short variables (HOME vs HOST) are never flagged.
 */
export function misspelledSettings(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (KNOWN_SET.has(name) || !SETTING_LIKE.test(name) || name.length < 4) continue;
    const guess = closest(name, KNOWN);
    const allowed = name.length < 10 ? 1 : 2;
    if (distance(name, guess) <= allowed) {
      warnings.push(`Unknown setting ${name} is ignored: did you mean ${guess}?`);
    }
  }
  return warnings;
}
