import fc from 'fast-check';
import { findIntegrityProblem, GuardedTypeLookalikes, MAX_EVENT_DEPTH } from '../../src/relay/frame-integrity';

describe('findIntegrityProblem', () => {
  it('finds nothing in what JSON.stringify produces (it never repeats a key), at any shape', () => {
    fc.assert(
      fc.property(fc.jsonValue({ depthSize: 'small', maxDepth: 8 }), (v) => {
        expect(findIntegrityProblem(JSON.stringify({ type: 'session.update', v }))).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it('finds a key repeated in any one object, naming its path, and tells sibling objects apart', () => {
    expect(findIntegrityProblem('{"type":"a","type":"b"}')).toEqual({ kind: 'duplicate_key', param: 'type' });
    expect(findIntegrityProblem('{"type":"a","s":{"x":1,"y":{"z":[1,{"k":1,"k":2}]}}}')).toEqual({ kind: 'duplicate_key', param: 's.y.z[1].k' });
    expect(findIntegrityProblem('{"type":"a","i":[{"role":"user"},{"role":"user"}]}')).toBeNull();
    // Escapes are decoded before comparing: a second spelling of the same key is the same key.
    expect(findIntegrityProblem('{"type":"a","typ\\u0065":"b"}')).toEqual({ kind: 'duplicate_key', param: 'type' });
    // Keys inside string values are not keys.
    expect(findIntegrityProblem('{"type":"a","text":"\\"type\\":1"}')).toBeNull();
  });

  it('refuses nesting deeper than the limit without recursing (5,000 levels)', () => {
    const deep = `{"type":"a","x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    expect(findIntegrityProblem(deep)).toEqual({ kind: 'too_deep' });
    const ok = `{"type":"a","x":${'['.repeat(MAX_EVENT_DEPTH - 1)}${']'.repeat(MAX_EVENT_DEPTH - 1)}}`;
    expect(findIntegrityProblem(ok)).toBeNull();
  });
});

describe('GuardedTypeLookalikes', () => {
  const g = new GuardedTypeLookalikes(['session.update', 'response.create']);
  it.each(['Session.Update', 'session.update ', ' session.update', 'session.update\u0000', 'session.update\u200b', 'ſession.update', 'SESSION.UPDATE\t', 'response.create\n'])(
    'recognises %j',
    (t) => {
      expect(g.imitated(t)).not.toBeNull();
    },
  );
  it.each(['input_audio_buffer.append', 'session.updated', 'response.cancel', 'session_update'])('lets %j through', (t) => {
    expect(g.imitated(t)).toBeNull();
  });
});
