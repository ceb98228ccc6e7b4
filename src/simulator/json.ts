/** JSON value types and narrowing helpers; client frames arrive as untrusted text. */
export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function str(o: JsonObject | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' ? v : undefined;
}

export function num(o: JsonObject | undefined, key: string): number | undefined {
  const v = o?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function obj(o: JsonObject | undefined, key: string): JsonObject | undefined {
  const v = o?.[key];
  return isObject(v) ? v : undefined;
}

export function arr(o: JsonObject | undefined, key: string): Json[] | undefined {
  const v = o?.[key];
  return Array.isArray(v) ? v : undefined;
}

export function clone<T extends Json>(v: T): T {
  return structuredClone(v);
}

/**
 * Merges a session patch the way the API applies session.update: fields present replace the old
 * ones, except nested config objects (e.g. GA `audio.input`), which are patched field by field so a
 * client can change the voice without restating the input format.
 */
export function mergeSession(base: JsonObject, patch: JsonObject, depth = 0): JsonObject {
  const out: JsonObject = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    const old = out[k];
    if (depth < 2 && MERGEABLE.has(k) && isObject(v) && isObject(old)) {
      out[k] = mergeSession(old, v, depth + 1);
    } else {
      out[k] = clone(v);
    }
  }
  return out;
}
const MERGEABLE = new Set(['audio', 'input', 'output']);
