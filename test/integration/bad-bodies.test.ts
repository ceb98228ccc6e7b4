import { Writable } from 'node:stream';
import { createLogger } from '../../src/logging';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { TestClient } from '../support/ws-client';

/** Bodies and frames too deep for any real request: refused as the client's error, quietly. */
describe('bad bodies are 400s', () => {
  let relay: RelayInstance;
  afterEach(async () => {
    await relay?.close();
  });

  const deep = (levels: number): string => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

  it('answers a body nested 5,000 deep with 400 invalid_request_error on every JSON route, logging nothing at error level', async () => {
    const lines: string[] = [];
    const logger = createLogger('trace', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
    relay = await startRelay({}, { logger });
    const minter = await relay.createKey('alice', ['mint']);
    const calls: Array<{ method: 'POST' | 'PUT'; url: string; token: string; body: string }> = [
      { method: 'POST', url: '/v1/realtime/client_secrets', token: minter, body: `{"session":{"type":"realtime","model":"gpt-realtime","tools":[${deep(5000)}]}}` },
      { method: 'POST', url: '/v1/realtime/client_secrets', token: minter, body: `{"session":${deep(5000)}}` },
      { method: 'POST', url: '/v1/realtime/sessions', token: minter, body: `{"model":"gpt-4o-realtime-preview-2025-06-03","tools":${deep(5000)}}` },
      { method: 'POST', url: '/admin/keys', token: relay.adminToken, body: `{"user":"bob","scopes":["realtime"],"name":${deep(5000)}}` },
      { method: 'PUT', url: '/admin/budgets/user/bob', token: relay.adminToken, body: `{"daily_usd":${deep(5000)}}` },
    ];
    for (const c of calls) {
      const res = await relay.relay.app.inject({ method: c.method, url: c.url, headers: { authorization: `Bearer ${c.token}`, 'content-type': 'application/json' }, payload: c.body });
      expect([c.url, res.statusCode, res.json().error.type]).toEqual([c.url, 400, 'invalid_request_error']);
    }
    // A normal mint still works after all that.
    const ok = await relay.request('POST', '/v1/realtime/client_secrets', { headers: { authorization: `Bearer ${minter}` }, body: { session: { type: 'realtime', model: 'gpt-realtime' } } });
    expect(ok.status).toBe(200);
    const logged = lines.map((l) => JSON.parse(l) as { level: number; msg: string; err?: { stack?: string } });
    expect(logged.filter((l) => l.level >= 50)).toEqual([]);
    expect(logged.filter((l) => l.err?.stack !== undefined)).toEqual([]);
  });

  it('refuses a client frame nested too deep with an invalid_request_error event, not a relay error', async () => {
    relay = await startRelay();
    const key = await relay.createKey('alice', ['realtime']);
    const c = await TestClient.connect(relay.wsUrl, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor('session.created');
    c.ws.send(`{"type":"session.update","event_id":"deep","session":{"tools":[${deep(5000)}]}}`);
    const e = (await c.waitFor((x) => x.type === 'error' && (x.error as { event_id?: string }).event_id === 'deep')) as { error: { type: string; code: string } };
    expect(e.error).toMatchObject({ type: 'invalid_request_error', code: 'nesting_too_deep' });
    c.close();
  });
});
