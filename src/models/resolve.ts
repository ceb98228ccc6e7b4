/**
 * Which model a session is served with. A model past its shutdown date is refused with a clear
 * error — unless the operator mapped it to a replacement in MODEL_ALIASES, which is then served
 * (and billed: metering sees the served model; the ledger keeps the requested one beside it).
 */
import type { ProtocolError } from '../relay/protocol-errors';
import { day, type ModelLifecycle } from './lifecycle';

export type ModelResolution =
  | { ok: true; model: string; requested: string; deprecated: { shutdown: Date; replacement: string | null } | null }
  | { ok: false; error: ProtocolError };

export function resolveModel(o: { lifecycle: ModelLifecycle; aliases: Readonly<Record<string, string>>; provider: string; model: string; at: Date }): ModelResolution {
  const state = o.lifecycle.stateOf(o.provider, o.model, o.at);
  if (state.state === 'active') return { ok: true, model: o.model, requested: o.model, deprecated: null };
  if (state.state === 'deprecated') return { ok: true, model: o.model, requested: o.model, deprecated: { shutdown: state.shutdown, replacement: state.replacement } };
  const alias = Object.prototype.hasOwnProperty.call(o.aliases, o.model) ? o.aliases[o.model] : undefined;
  if (alias !== undefined) {
    const target = o.lifecycle.stateOf(o.provider, alias, o.at);
    if (target.state !== 'shutdown') {
      return { ok: true, model: alias, requested: o.model, deprecated: target.state === 'deprecated' ? { shutdown: target.shutdown, replacement: target.replacement } : null };
    }
  }
  const instead = state.replacement ? ` Use ${state.replacement} instead.` : '';
  return {
    ok: false,
    error: {
      type: 'invalid_request_error',
      code: 'model_shut_down',
      message: `Model ${o.model} was shut down by the provider on ${day(state.shutdown)}.${instead}`,
      param: 'model',
    },
  };
}

/** `a=b,c=d` → {a: b, c: d}; throws naming the bad pair. */
export function parseModelAliases(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  if (!text) return out;
  for (const pair of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const m = /^([A-Za-z0-9._:/-]+)\s*=\s*([A-Za-z0-9._:/-]+)$/.exec(pair);
    if (!m) throw new Error(`'${pair}' is not model=replacement`);
    if (m[1] === m[2]) throw new Error(`'${pair}' maps a model to itself`);
    out[m[1]] = m[2];
  }
  return out;
}
