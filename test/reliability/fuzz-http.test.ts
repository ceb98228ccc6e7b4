/**
 * Property-based fuzzing of every HTTP route: malformed, oversized and wrongly typed bodies,
 * odd content types, garbage query strings and credentials. Properties: never a 5xx, every
 * 4xx carries OpenAI's error body `{"error": {message, type, code}}`, no unhandled error in
 * the process, and a well-behaved session still completes a response afterwards.
 */
import { request as httpRequest } from 'node:http';
import fc from 'fast-check';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { connect, converse, crashWatch, expectOpenAiError, HAMMER_ENV } from './helpers';

const BODY_LIMIT = 64 * 1024;
const RUNS = 30;

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface Call {
  method: Method;
  url: string;
  headers?: Record<string, string>;
  payload?: string | Buffer;
}

interface Answer {
  status: number;
  body: unknown;
  raw: string;
}

/** Every route, with a valid-looking path; `auth` picks the credential the route needs. */
const ROUTES: ReadonlyArray<{ method: Method; path: string; auth: 'admin' | 'user'; body: boolean }> = [
  { method: 'POST', path: '/v1/realtime/sessions', auth: 'user', body: true },
  { method: 'POST', path: '/v1/realtime/client_secrets', auth: 'user', body: true },
  { method: 'POST', path: '/admin/keys', auth: 'admin', body: true },
  { method: 'GET', path: '/admin/keys', auth: 'admin', body: false },
  { method: 'GET', path: '/admin/keys/0123456789abcdef', auth: 'admin', body: false },
  { method: 'DELETE', path: '/admin/keys/0123456789abcdef', auth: 'admin', body: false },
  { method: 'POST', path: '/admin/ephemeral-keys/eph_0123456789abcdef01234567/revoke', auth: 'admin', body: true },
  { method: 'GET', path: '/admin/principals/alice', auth: 'admin', body: false },
  { method: 'PUT', path: '/admin/budgets/user/alice', auth: 'admin', body: true },
  { method: 'GET', path: '/admin/budgets/tenant/acme', auth: 'admin', body: false },
  { method: 'DELETE', path: '/admin/budgets/user/nobody', auth: 'admin', body: false },
  { method: 'GET', path: '/v1/usage', auth: 'user', body: false },
  { method: 'GET', path: '/admin/usage', auth: 'admin', body: false },
  { method: 'GET', path: '/v1/realtime', auth: 'user', body: false },
  { method: 'GET', path: '/healthz', auth: 'user', body: false },
  { method: 'GET', path: '/readyz', auth: 'user', body: false },
];

/** Field names the routes know, so that wrongly typed values reach the handlers' own checks. */
const FIELDS = [
  'user', 'tenant', 'scopes', 'name', 'expires_at', 'expires_after', 'mode', 'model', 'session', 'instructions', 'voice',
  'modalities', 'tools', 'tool_choice', 'temperature', 'max_response_output_tokens', 'turn_detection', 'client_secret',
  'daily_usd', 'monthly_usd', 'total_usd', 'input_audio_format', 'speed',
];
const QUERY_KEYS = ['user', 'tenant', 'model', 'from', 'to', 'group_by', 'limit', 'call_id'];

const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom('', '-1', '1e309', '0.0000000001', '99999999999999.999999999', 'NaN', '2025-02-30', '9999-99-99T99:99Z', 'inf', 'realtime', 'provider', 'admin'),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 2 ** 63, 1e308),
  fc.jsonValue({ maxDepth: 3 }),
);

const jsonBody: fc.Arbitrary<string> = fc.oneof(
  fc.dictionary(fc.constantFrom(...FIELDS), weirdValue, { maxKeys: 5 }).map((o) => JSON.stringify(o)),
  fc.record({ session: fc.dictionary(fc.constantFrom(...FIELDS, 'type', 'audio', 'output_modalities'), weirdValue, { maxKeys: 4 }) }).map((o) => JSON.stringify(o)),
  fc.record({ expires_after: fc.record({ anchor: weirdValue, seconds: weirdValue }, { requiredKeys: [] }) }).map((o) => JSON.stringify(o)),
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? 'null'),
  fc.integer({ min: 1000, max: 20_000 }).map((d) => `{"session":${'['.repeat(d)}${']'.repeat(d)}}`),
);

const malformedBody: fc.Arbitrary<string> = fc.oneof(
  fc.string({ maxLength: 100 }),
  fc.constantFrom('{', '{"user":', '{"scopes":["realtime"]', '[', '{"a":1}}', 'nul', '\u0000', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{}}}'),
);

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/octet-stream',
  'application/json; charset=latin1',
  '',
);

const queryString: fc.Arbitrary<string> = fc.oneof(
  fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), fc.oneof(fc.string({ maxLength: 30 }), weirdValue.map((v) => String(v)))), { maxLength: 5 }).map((pairs) =>
    pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'),
  ),
  fc.constantFrom('%', '%ZZ', 'user=%E0%A4%A', 'from=%00', 'user=a&user=b', 'limit=1&limit=2', '&&&', '=x', 'group_by[]=day', 'user[a]=b', 'limit=-5', 'limit=1e3'),
  fc.string({ maxLength: 50 }).map((s) => encodeURIComponent(s)),
  fc.integer({ min: 1000, max: 60_000 }).map((n) => `user=${'u'.repeat(n)}`),
);

const credential = (admin: string, user: string): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(`Bearer ${admin}`, `Bearer ${user}`) },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.constant(undefined),
        fc.string({ maxLength: 40 }).map((s) => `Bearer ${s}`),
        fc.constantFrom(
          'Bearer rk_0123456789abcdef_wrongsecretwrongsecret',
          'Bearer ek_not.a.jws',
          'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.',
          'Basic dXNlcjpwYXNz',
          'Bearer',
          'Bearer  ',
        ),
      ),
    },
  );

describe('fuzzing the HTTP routes', () => {
  let r: RelayInstance;
  let userKey: string;
  const crashes = crashWatch();

  async function call(c: Call): Promise<Answer> {
    const res = await r.relay.app.inject({ method: c.method, url: c.url, headers: c.headers, payload: c.payload });
    let body: unknown = res.body;
    try {
      body = JSON.parse(res.body);
    } catch {
      /* left as text: the property below says whether text was acceptable */
    }
    return { status: res.statusCode, body, raw: res.body };
  }

  /** The property every answer must satisfy. */
  function check(a: Answer, c: Call): void {
    const context = `${c.method} ${c.url.slice(0, 120)}`;
    if (a.status >= 500) throw new Error(`${context}: answered ${a.status} ${a.raw.slice(0, 300)}`);
    if (a.status >= 400) expectOpenAiError({ status: a.status, headers: {}, body: a.body }, context);
    crashes.assertNone();
  }

  beforeAll(async () => {
    crashes.install();
    r = await startRelay({ ...HAMMER_ENV, HTTP_BODY_LIMIT_BYTES: String(BODY_LIMIT), PROVIDER_MINT_ENABLED: 'true' });
    userKey = await r.createKey('http-fuzzer', ['realtime', 'mint', 'usage', 'provider_mint']);
  });

  afterEach(async () => {
    crashes.assertNone();
    const c = await connect(r, userKey);
    await converse(c);
    c.close();
  });

  afterAll(async () => {
    await r?.close();
    crashes.uninstall();
  });

  it('answers wrongly typed JSON bodies with 2xx or an OpenAI-shaped 4xx', async () => {
    const routes = ROUTES.filter((x) => x.body);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), jsonBody, credential(r.adminToken, userKey), async (route, payload, auth) => {
        const c: Call = { method: route.method, url: route.path, payload, headers: { 'content-type': 'application/json', ...(auth ? { authorization: auth } : {}) } };
        check(await call(c), c);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('answers malformed bodies and odd content types with an OpenAI-shaped 4xx', async () => {
    const routes = ROUTES.filter((x) => x.body);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), malformedBody, contentType, async (route, payload, type) => {
        const auth = route.auth === 'admin' ? r.adminToken : userKey;
        const c: Call = { method: route.method, url: route.path, payload, headers: { authorization: `Bearer ${auth}`, ...(type ? { 'content-type': type } : {}) } };
        check(await call(c), c);
      }),
      { numRuns: RUNS },
    );
  });

  it('refuses oversized bodies with 413 in the OpenAI shape', async () => {
    const routes = ROUTES.filter((x) => x.body);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.integer({ min: BODY_LIMIT + 1, max: BODY_LIMIT * 4 }), async (route, size) => {
        const auth = route.auth === 'admin' ? r.adminToken : userKey;
        const head = '{"name":"';
        const payload = head + 'x'.repeat(size - head.length - 2) + '"}';
        const c: Call = { method: route.method, url: route.path, payload, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' } };
        const a = await call(c);
        check(a, c);
        expect(a.status).toBe(413);
      }),
      { numRuns: 8 },
    );
  });

  it('answers garbage query strings, paths and credentials on every route without a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ROUTES),
        queryString,
        fc.constantFrom('', '/', '/x', '/%2e%2e', '/%00', '/%FF', '/%ZZ', '/%C0%AF', '/' + 'a'.repeat(300)),
        credential(r.adminToken, userKey),
        async (route, query, suffix, auth) => {
          const c: Call = { method: route.method, url: `${route.path}${suffix}?${query}`, headers: auth ? { authorization: auth } : {} };
          check(await call(c), c);
        },
      ),
      { numRuns: RUNS * 2 },
    );
  });

  it('answers raw malformed requests over a real socket without a 5xx', async () => {
    const port = new URL(r.baseUrl).port;
    const raw = (path: string, method = 'GET'): Promise<Answer> =>
      new Promise((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path, method, headers: { authorization: `Bearer ${r.adminToken}` } }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (d: Buffer) => chunks.push(d));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown = text;
            try {
              body = JSON.parse(text);
            } catch {
              /* text */
            }
            resolve({ status: res.statusCode ?? 0, body, raw: text });
          });
        });
        req.on('error', reject);
        req.end();
      });
    const paths = ['/admin/keys?limit=%', '/admin/usage?from=%E0%A4%A', '/v1/usage?%%%', '/admin/budgets/user/%FF', '/admin/keys/%ZZ', '/v1/realtime?model=%00', '/admin/principals/%C0%AF'];
    for (const p of paths) {
      const a = await raw(p);
      check(a, { method: 'GET', url: p });
    }
  });
});
