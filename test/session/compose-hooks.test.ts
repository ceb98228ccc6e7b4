import { chainGuards, composeHooks } from '../../src/session/compose-hooks';
import type { GuardDecision, ParsedEvent, RelaySession } from '../../src/relay/relay-session';

const forward: GuardDecision = { action: 'forward' };
const refuse = (code: string): GuardDecision => ({ action: 'reject', error: { type: 'invalid_request_error', code, message: code } });

describe('composeHooks', () => {
  it('runs guards for the same event type in order; the first that does not forward decides', async () => {
    const seen: string[] = [];
    const g = chainGuards(
      (e) => {
        seen.push(`a:${String(e.type)}`);
        return e.deny ? refuse('a') : forward;
      },
      async (e) => {
        seen.push('b');
        return e.deny2 ? refuse('b') : forward;
      },
    );
    expect(await g({ type: 'x' })).toEqual(forward);
    expect(await g({ type: 'x', deny: true })).toEqual(refuse('a'));
    expect(await g({ type: 'x', deny2: true })).toEqual(refuse('b'));
    expect(seen).toEqual(['a:x', 'b', 'a:x', 'a:x', 'b']);
  });

  it('hands a rewritten event to the next guard, and keeps the rewrite when it forwards', () => {
    const g = chainGuards(
      (e) => ({ action: 'replace', event: { ...e, added: 1 } }),
      (e) => (e.added === 1 ? forward : refuse('not rewritten')),
    );
    expect(g({ type: 'x' })).toEqual({ action: 'replace', event: { type: 'x', added: 1 } });
  });

  it('keeps a sync chain sync (the relay holds frames only for async guards)', () => {
    const g = chainGuards(() => forward, () => forward);
    expect(g({ type: 'x' })).not.toBeInstanceOf(Promise);
  });

  it('calls every tap and per-frame callback of both sides, and concatenates initial frames', () => {
    const calls: string[] = [];
    const tap = (name: string) => (e: ParsedEvent) => {
      calls.push(`${name}:${String(e.type)}`);
    };
    const h = composeHooks(
      { upstreamTaps: { 'response.done': tap('meter') }, onClientFrame: () => calls.push('frameA'), initialUpstreamFrames: ['locked'] },
      { upstreamTaps: { 'response.done': tap('tools'), 'session.updated': tap('tools') }, onClientFrame: () => calls.push('frameB'), initialUpstreamFrames: ['tools'] },
    );
    const session = {} as RelaySession;
    h.upstreamTaps!['response.done']!({ type: 'response.done' }, session);
    h.upstreamTaps!['session.updated']!({ type: 'session.updated' }, session);
    h.onClientFrame!('x', 1);
    expect(calls).toEqual(['meter:response.done', 'tools:response.done', 'tools:session.updated', 'frameA', 'frameB']);
    expect(h.initialUpstreamFrames).toEqual(['locked', 'tools']);
  });
});
