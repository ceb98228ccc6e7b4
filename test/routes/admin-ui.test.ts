/**
 * The console's static files: a fixed list, uPlot from node_modules, a CSP that admits only the
 * relay's own scripts, and nothing else reachable under /admin/ui.
 */
import { startRelay, type RelayInstance } from '../support/relay-instance';

describe('GET /admin/ui', () => {
  let r: RelayInstance;
  beforeAll(async () => {
    r = await startRelay();
  });
  afterAll(async () => {
    await r?.close();
  });

  it('serves the page, its script and styles, and uPlot, with a self-only CSP', async () => {
    for (const [url, type] of [
      ['/admin/ui', 'text/html'],
      ['/admin/ui/', 'text/html'],
      ['/admin/ui/admin.js', 'text/javascript'],
      ['/admin/ui/admin.css', 'text/css'],
      ['/admin/ui/vendor/uPlot.iife.min.js', 'text/javascript'],
      ['/admin/ui/vendor/uPlot.min.css', 'text/css'],
    ]) {
      const res = await r.relay.app.inject({ method: 'GET', url });
      expect([url, res.statusCode]).toEqual([url, 200]);
      expect(String(res.headers['content-type'])).toContain(type);
      const csp = String(res.headers['content-security-policy']);
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("connect-src 'self'");
      expect(csp).not.toMatch(/unsafe-(inline|eval)|https?:/);
      expect(res.headers['x-content-type-options']).toBe('nosniff');
    }
    const page = await r.relay.app.inject({ method: 'GET', url: '/admin/ui' });
    // Every script and stylesheet the page loads is the relay's own.
    const refs = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(refs.filter((u) => !u.startsWith('/admin/ui/') && u !== 'data:,')).toEqual([]);
    expect(page.body).not.toMatch(/<script>(?!<\/script>)/);
  });

  it('serves nothing but its listed files', async () => {
    for (const url of ['/admin/ui/index.js', '/admin/ui/constructor', '/admin/ui/vendor/uPlot.esm.js', '/admin/ui/..%2Fpackage.json', '/admin/ui/vendor/..%2F..%2Fpackage.json']) {
      const res = await r.relay.app.inject({ method: 'GET', url });
      expect([url, res.statusCode]).toEqual([url, 404]);
    }
  });

  it('keeps the admin API behind its credential (the page is public, the data is not)', async () => {
    const res = await r.relay.app.inject({ method: 'GET', url: '/admin/sessions/live' });
    expect(res.statusCode).toBe(401);
  });
});
