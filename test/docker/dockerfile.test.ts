import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RealtimeSimulator } from '../../src/simulator';
import { cleanCopyOfTree, healthcheckPasses, runDockerfile, startStage } from '../support/dockerfile-runner';
import { delay, TestClient } from '../support/ws-client';

const REPO = path.resolve(__dirname, '..', '..');

/** A port nothing listens on right now (the HEALTHCHECK needs it known before the start). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The Dockerfile's own steps, run in a clean copy of the tree: production install, build,
 * start with production settings, health. No Docker engine runs here, so the steps run on
 * the host, each stage in its own directory.
 */
describe('Dockerfile', () => {
  jest.setTimeout(15 * 60 * 1000);
  const workspace = mkdtempSync(path.join(tmpdir(), 'relay-docker-'));
  afterAll(() => rmSync(workspace, { recursive: true, force: true }));

  it('builds in a clean copy of the tree, starts in production mode and reports healthy', async () => {
    const context = path.join(workspace, 'context');
    cleanCopyOfTree(REPO, context);
    const stage = runDockerfile({ dockerfile: path.join(context, 'Dockerfile'), context, workspace: path.join(workspace, 'stages') });
    expect(stage.name).toBe('runtime');
    expect(stage.env.NODE_ENV).toBe('production');

    const sim = new RealtimeSimulator({ apiKey: 'sk-upstream-docker-test' });
    await sim.start();
    const port = String(await freePort());
    const env = {
      PORT: port,
      HOST: '127.0.0.1',
      UPSTREAM_PROVIDER: 'compatible',
      UPSTREAM_BASE_URL: sim.baseUrl,
      UPSTREAM_API_KEY: 'sk-upstream-docker-test',
      RELAY_TOKEN_SECRET: 'docker-test-secret-0123456789abcdef0123',
      RELAY_ADMIN_TOKEN: 'docker-admin-token-0123456789',
      LOG_LEVEL: 'warn',
    };
    const child = startStage(stage, env);
    let output = '';
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    try {
      let healthy = false;
      for (let i = 0; i < 60 && !healthy; i++) {
        await delay(500);
        healthy = healthcheckPasses(stage, { PORT: port });
      }
      expect({ healthy, output }).toMatchObject({ healthy: true });
      // The production install must carry the native masking addon (the relay warns without it).
      expect(output).not.toContain('bufferutil did not load');
      const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(ready.status).toBe(200);

      // A real session through the built relay, with a key from its admin API.
      const created = await fetch(`http://127.0.0.1:${port}/admin/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${env.RELAY_ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'docker-user', scopes: ['realtime'] }),
      });
      const { key } = (await created.json()) as { key: string };
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/realtime?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
      await c.waitFor('session.created');
      c.close();

      child.kill('SIGTERM');
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await sim.stop();
    }
  });
});
