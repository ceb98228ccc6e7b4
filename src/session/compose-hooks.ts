/**
 * Several layers (locking, budgets, tools, …) may each want a guard or a tap on the same event
 * type. `composeHooks` merges their SessionHooks: guards run in order, the first that does not
 * forward decides (a `replace` hands the rewritten event to the next guard), taps all run, and
 * the per-frame callbacks are all called.
 */
import type { ClientGuard, GuardDecision, ParsedEvent, SessionHooks, UpstreamTap } from '../relay/relay-session';

type Maybe<T> = T | Promise<T>;
const then = <A, B>(v: Maybe<A>, f: (a: A) => Maybe<B>): Maybe<B> => (v instanceof Promise ? v.then(f) : f(v));

export function chainGuards(first: ClientGuard, second: ClientGuard): ClientGuard {
  return (event: ParsedEvent) =>
    then(first(event), (d): Maybe<GuardDecision> => {
      if (d.action === 'forward') return second(event);
      if (d.action !== 'replace') return d;
      // A rewritten event is what the next layer must judge; if it forwards, the rewrite stands.
      return then(second(d.event), (d2) => (d2.action === 'forward' ? d : d2));
    });
}

function chainTaps(first: UpstreamTap, second: UpstreamTap): UpstreamTap {
  return (event, session) => {
    first(event, session);
    second(event, session);
  };
}

function mergeRecords<F>(a: Readonly<Record<string, F>> | undefined, b: Readonly<Record<string, F>> | undefined, chain: (x: F, y: F) => F): Record<string, F> | undefined {
  if (!a) return b ? { ...b } : undefined;
  if (!b) return { ...a };
  const out = new Map<string, F>(Object.entries(a));
  for (const [type, f] of Object.entries(b)) {
    const existing = out.get(type);
    out.set(type, existing ? chain(existing, f) : f);
  }
  return Object.fromEntries(out);
}

function both<A extends unknown[]>(x: ((...a: A) => void) | undefined, y: ((...a: A) => void) | undefined): ((...a: A) => void) | undefined {
  if (!x || !y) return x ?? y;
  return (...a: A) => {
    x(...a);
    y(...a);
  };
}

/** `a`'s hooks, then `b`'s, for every event type and callback either of them has. */
export function composeHooks(a: SessionHooks, b: SessionHooks): SessionHooks {
  return {
    ...a,
    clientGuards: mergeRecords(a.clientGuards, b.clientGuards, chainGuards),
    upstreamTaps: mergeRecords(a.upstreamTaps, b.upstreamTaps, chainTaps),
    onClientFrame: both(a.onClientFrame, b.onClientFrame),
    onUpstreamFrame: both(a.onUpstreamFrame, b.onUpstreamFrame),
    initialUpstreamFrames: [...(a.initialUpstreamFrames ?? []), ...(b.initialUpstreamFrames ?? [])],
    onUpstreamOpen: both(a.onUpstreamOpen, b.onUpstreamOpen),
    onHandshakeFailure: both(a.onHandshakeFailure, b.onHandshakeFailure),
    onEnd: both(a.onEnd, b.onEnd),
    onRelayEvent: both(a.onRelayEvent, b.onRelayEvent),
  };
}
