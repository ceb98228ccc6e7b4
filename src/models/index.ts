/**
 * The relay's model lifecycle at run time: loaded once at start, a warning per deprecated or
 * shut-down model of the configured provider, a counter of connections to deprecated models, and
 * the resolver the realtime route asks for every session.
 */
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { day, ModelLifecycle } from './lifecycle';
import { resolveModel, type ModelResolution } from './resolve';

export { ModelLifecycle } from './lifecycle';
export { resolveModel, parseModelAliases, type ModelResolution } from './resolve';

export interface ModelPolicy {
  lifecycle: ModelLifecycle;
  resolve(model: string, at?: Date): ModelResolution;
}

export function openModelPolicy(o: { file: string; provider: string; aliases: Readonly<Record<string, string>>; logger: Logger; registry?: Registry; now?: () => Date }): ModelPolicy {
  const lifecycle = ModelLifecycle.load(o.file);
  const now = o.now ?? ((): Date => new Date());
  const at = now();
  for (const e of lifecycle.entries(o.provider)) {
    const alias = o.aliases[e.model];
    const fields = { model: e.model, provider: o.provider, shutdown_date: day(e.shutdown), replacement: e.replacement, ...(alias ? { alias } : {}) };
    if (at >= e.shutdown) o.logger.warn(fields, alias ? `model ${e.model} is shut down upstream; sessions asking for it are served ${alias} (MODEL_ALIASES)` : `model ${e.model} is shut down upstream; sessions asking for it are refused`);
    else o.logger.warn(fields, `model ${e.model} is deprecated upstream and shuts down on ${day(e.shutdown)}`);
  }
  // Labels come from the lifecycle file only (a bounded set), never from what a client typed.
  const deprecatedConnections = new Counter({
    name: 'realtime_relay_deprecated_model_connections_total',
    help: 'Sessions opened with a model the provider has deprecated (a shutdown date announced), by the model served.',
    labelNames: ['provider', 'model'] as const,
    registers: o.registry ? [o.registry] : [],
  });
  return {
    lifecycle,
    resolve(model, when = now()) {
      const r = resolveModel({ lifecycle, aliases: o.aliases, provider: o.provider, model, at: when });
      if (r.ok && r.deprecated) deprecatedConnections.inc({ provider: o.provider, model: r.model });
      return r;
    },
  };
}
