import { startRelay, type RelayInstance } from '../support/relay-instance';

describe('GET /demo (static demo page)', () => {
  let on: RelayInstance;
  let off: RelayInstance;

  beforeAll(async () => {
    [on, off] = await Promise.all([startRelay(), startRelay({ DEMO_ENABLED: 'false' })]);
  });

  afterAll(async () => {
    await Promise.all([on?.close(), off?.close()]);
  });

  it.each([
    ['/demo', 'text/html; charset=utf-8', '<!doctype html>'],
    ['/demo/', 'text/html; charset=utf-8', '<!doctype html>'],
    ['/demo/index.html', 'text/html; charset=utf-8', '<!doctype html>'],
    ['/demo/demo.js', 'text/javascript; charset=utf-8', "'use strict';"],
    ['/demo/demo-worklet.js', 'text/javascript; charset=utf-8', "registerProcessor('pcm-capture'"],
    ['/demo/demo.css', 'text/css; charset=utf-8', ':root'],
  ])('%s is served as %s', async (url, type, snippet) => {
    const res = await on.request<string>('GET', url);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe(type);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.body).toContain(snippet);
  });

  it('loads nothing from another origin (no CDN) and carries no key', async () => {
    const html = (await on.request<string>('GET', '/demo')).body;
    const js = (await on.request<string>('GET', '/demo/demo.js')).body;
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(js).not.toMatch(/https?:\/\//);
    expect(`${html}${js}`).not.toMatch(/\b(sk-|rk_|ek_)[A-Za-z0-9]/);
  });

  it.each(['/demo/../package.json', '/demo/%2e%2e%2fpackage.json', '/demo/constructor', '/demo/other.js', '/demo/.env'])('%s is 404', async (url) => {
    expect((await on.request('GET', url)).status).toBe(404);
  });

  it('is not served when DEMO_ENABLED=false', async () => {
    for (const url of ['/demo', '/demo/', '/demo/demo.js']) expect((await off.request('GET', url)).status).toBe(404);
  });
});
