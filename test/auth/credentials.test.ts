import { AuthError } from '../../src/auth/errors';
import {
  assertNoQueryCredential,
  extractCredential,
  offeredSubprotocols,
  requestsBetaDialect,
  selectSubprotocol,
} from '../../src/auth/credentials';

const browserProtocols = 'realtime, openai-insecure-api-key.ek_abc.def.ghi, openai-beta.realtime-v1';

describe('extractCredential', () => {
  it('reads a Bearer Authorization header, scheme case-insensitive', () => {
    expect(extractCredential({ authorization: 'Bearer rk_1_2' })).toEqual({ value: 'rk_1_2', source: 'authorization' });
    expect(extractCredential({ authorization: 'bearer  tok ' })).toEqual({ value: 'tok', source: 'authorization' });
  });

  it('reads the key from the browser subprotocol list', () => {
    expect(extractCredential({ 'sec-websocket-protocol': browserProtocols })).toEqual({ value: 'ek_abc.def.ghi', source: 'subprotocol' });
  });

  it('prefers the Authorization header over a subprotocol', () => {
    expect(extractCredential({ authorization: 'Bearer hdr', 'sec-websocket-protocol': browserProtocols })?.source).toBe('authorization');
  });

  it("reads Azure clients' api-key header, after Authorization and before a subprotocol", () => {
    expect(extractCredential({ 'api-key': ' rk_1_2 ' })).toEqual({ value: 'rk_1_2', source: 'api-key' });
    expect(extractCredential({ authorization: 'Bearer hdr', 'api-key': 'other' })?.value).toBe('hdr');
    expect(extractCredential({ 'api-key': 'az', 'sec-websocket-protocol': browserProtocols })?.value).toBe('az');
    expect(extractCredential({ 'api-key': '  ' })).toBeNull();
  });

  it('returns null without a credential, and refuses other schemes', () => {
    expect(extractCredential({ 'sec-websocket-protocol': 'realtime' })).toBeNull();
    expect(extractCredential({})).toBeNull();
    expect(() => extractCredential({ authorization: 'Basic dXNlcjpwdw==' })).toThrow(AuthError);
  });

  it('refuses credentials in the query string with a 401 naming the alternatives', () => {
    for (const url of ['/v1/realtime?model=m&api_key=rk_x', '/v1/realtime?api-key=abc', '/v1/realtime?token=x', '/v1/realtime?foo=ek_abc']) {
      let err: unknown;
      try {
        extractCredential({ authorization: 'Bearer fine' }, { url });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(AuthError);
      expect((err as AuthError).statusCode).toBe(401);
      expect((err as AuthError).code).toBe('credential_in_query');
      expect((err as AuthError).message).toMatch(/Authorization: Bearer/);
      expect((err as AuthError).message).toMatch(/subprotocol/);
    }
    expect(() => assertNoQueryCredential('/v1/realtime?model=gpt-realtime&call_id=abc')).not.toThrow();
  });
});

describe('subprotocols', () => {
  it('lists offered subprotocols and selects realtime, never the key', () => {
    expect(offeredSubprotocols({ 'sec-websocket-protocol': browserProtocols })).toEqual([
      'realtime',
      'openai-insecure-api-key.ek_abc.def.ghi',
      'openai-beta.realtime-v1',
    ]);
    expect(selectSubprotocol(new Set(['openai-insecure-api-key.k', 'realtime']))).toBe('realtime');
    expect(selectSubprotocol(browserProtocols)).toBe('realtime');
    expect(selectSubprotocol(new Set(['openai-insecure-api-key.k']))).toBe(false);
    expect(selectSubprotocol(undefined)).toBe(false);
  });

  it('detects a beta client by header or subprotocol', () => {
    expect(requestsBetaDialect({ 'openai-beta': 'realtime=v1' })).toBe(true);
    expect(requestsBetaDialect({ 'sec-websocket-protocol': browserProtocols })).toBe(true);
    expect(requestsBetaDialect({ 'sec-websocket-protocol': 'realtime' })).toBe(false);
  });
});
