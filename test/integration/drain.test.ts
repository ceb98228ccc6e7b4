import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openDatabase } from '../../src/storage/database';
import { Ledger } from '../../src/storage/ledger';
import { startRelayProcess } from '../support/relay-process';
import { delay, refusedUpgrade, TestClient } from '../support/ws-client';

/** SIGTERM on a real relay process: stop admitting, let sessions finish, close the rest with 1001, bill everything, exit 0. */
describe('graceful drain on SIGTERM', () => {
  jest.setTimeout(60000);
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-drain-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('drains open sessions, refuses new ones, and loses no usage', async () => {
    const admin = 'drain-admin-token-0123456789';
    const db = `sqlite:${path.join(dir, 'relay.db')}`;
    const relay = await startRelayProcess({
      UPSTREAM_PROVIDER: 'simulator',
      DATABASE_URL: db,
      SPOOL_DIR: path.join(dir, 'spool'),
      RELAY_ADMIN_TOKEN: admin,
      DRAIN_TIMEOUT_MS: '2500',
    });
    const { child, exited } = relay;
    try {
      const base = relay.baseUrl;
      const res = await fetch(`${base}/admin/keys`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ user: 'ida', scopes: ['realtime'] }) });
      const { key } = (await res.json()) as { key: string };
      const auth = { headers: { authorization: `Bearer ${key}` } };
      const ws = relay.wsUrl;
      const busy = await TestClient.connect(ws, auth);
      const idle = await TestClient.connect(ws, auth);
      await busy.waitFor('session.created');
      await idle.waitFor('session.created');

      busy.send({ type: 'response.create' });
      await busy.waitFor('response.created');
      child.kill('SIGTERM');
      await delay(200);

      // Draining: not ready, and new sessions are refused before the upgrade.
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toMatchObject({ draining: true });
      const refused = await refusedUpgrade(ws, auth);
      expect(refused.status).toBe(503);
      expect(refused.body).toMatchObject({ error: { code: 'relay_draining' } });

      // The open session keeps working during the drain.
      const done = (await busy.waitFor('response.done', 5000)) as { response: { id: string } };
      busy.send({ type: 'response.create' });
      const second = (await busy.waitFor((e) => e.type === 'response.done' && (e.response as { id: string }).id !== done.response.id, 5000)) as { response: { id: string } };

      // At the drain timeout the rest are closed with 1001, and the process exits cleanly.
      expect((await idle.closed).code).toBe(1001);
      expect((await busy.closed).code).toBe(1001);
      expect(await exited).toBe(0);

      const database = await openDatabase(db);
      const ledger = new Ledger(database);
      expect(await ledger.find('simulator', done.response.id)).not.toBeNull();
      expect(await ledger.find('simulator', second.response.id)).not.toBeNull();
      await database.close();
    } catch (err) {
      console.error(relay.logs());
      throw err;
    } finally {
      child.kill('SIGKILL');
    }
  });
});
