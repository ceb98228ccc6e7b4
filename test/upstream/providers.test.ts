import Fastify from 'fastify';
import websocket from '@fastify/websocket';
import { loadConfig } from '../../src/config/config';
import { SessionRegistry } from '../../src/relay/session-registry';
import { realtimeRoutes } from '../../src/routes/realtime';
import { RealtimeSimulator } from '../../src/simulator';
import { createProvider } from '../../src/upstream';
import { TestClient } from '../support/ws-client';

const base = { NODE_ENV: 'test' };

describe('upstream providers', () => {
  it('openai: GA by default with a Bearer key and no beta header; beta adds OpenAI-Beta', () => {
    const ga = createProvider(loadConfig({ ...base, OPENAI_API_KEY: 'sk-o', OPENAI_ORGANIZATION: 'org_1', OPENAI_PROJECT: 'proj_1' }).upstream);
    const t = ga.realtimeTarget('gpt-realtime', 'rs_1');
    expect(t.url).toBe('wss://api.openai.com/v1/realtime?model=gpt-realtime');
    expect(t.headers).toEqual({ Authorization: 'Bearer sk-o', 'OpenAI-Organization': 'org_1', 'OpenAI-Project': 'proj_1', 'X-Client-Request-Id': 'rs_1' });
    // OpenAI removed the beta interface: configuring it is refused, and no session carries the header.
    expect(() => loadConfig({ ...base, OPENAI_API_KEY: 'sk-o', REALTIME_API_VERSION: 'beta' })).toThrow(/REALTIME_API_VERSION: provider openai accepts only the ga dialect/);
    expect(() => loadConfig({ ...base, OPENAI_API_KEY: 'sk-o', UPSTREAM_DIALECTS: 'ga,beta' })).toThrow(/UPSTREAM_DIALECTS/);
    expect(ga.dialects).toEqual(['ga']);
    expect(ga.realtimeTarget('gpt-realtime', 'rs_2').headers['OpenAI-Beta']).toBeUndefined();
    // A compatible upstream that accepts both gets the header only on beta sessions.
    const both = createProvider(loadConfig({ ...base, UPSTREAM_BASE_URL: 'https://x.example/v1', UPSTREAM_API_KEY: 'k', UPSTREAM_DIALECTS: 'ga,beta' }).upstream);
    expect(both.dialects).toEqual(['ga', 'beta']);
    expect(both.realtimeTarget('m', 'rs', 'beta').headers['OpenAI-Beta']).toBe('realtime=v1');
    expect(both.realtimeTarget('m', 'rs', 'ga').headers['OpenAI-Beta']).toBeUndefined();
    expect(ga.httpTarget('/realtime/client_secrets').url).toBe('https://api.openai.com/v1/realtime/client_secrets');
  });

  it('cometapi: its own base and key, beta dialect', () => {
    const p = createProvider(loadConfig({ ...base, UPSTREAM_PROVIDER: 'cometapi', COMETAPI_KEY: 'sk-c' }).upstream);
    const t = p.realtimeTarget('gpt-4o-realtime-preview-2025-06-03', 'rs_1');
    expect(t.url).toBe('wss://api.cometapi.com/v1/realtime?model=gpt-4o-realtime-preview-2025-06-03');
    expect(t.headers).toMatchObject({ Authorization: 'Bearer sk-c', 'OpenAI-Beta': 'realtime=v1' });
  });

  it('azure: GA path under /openai/v1 with the api-key header; the beta preview path is not configured', () => {
    const ga = createProvider(loadConfig({ ...base, UPSTREAM_PROVIDER: 'azure', AZURE_OPENAI_API_KEY: 'az', AZURE_OPENAI_RESOURCE: 'res' }).upstream);
    const t = ga.realtimeTarget('my-deploy', 'rs_1');
    expect(t.url).toBe('wss://res.openai.azure.com/openai/v1/realtime?model=my-deploy');
    expect(t.headers['api-key']).toBe('az');
    expect(t.headers.Authorization).toBeUndefined();
    expect(t.headers['OpenAI-Beta']).toBeUndefined();
    expect(() => loadConfig({ ...base, UPSTREAM_PROVIDER: 'azure', AZURE_OPENAI_API_KEY: 'az', AZURE_OPENAI_RESOURCE: 'res', REALTIME_API_VERSION: 'beta' })).toThrow(/provider azure accepts only the ga dialect/);
  });

  it('compatible: derives ws:// and wss:// from an http(s) /v1 base', () => {
    const p = createProvider(loadConfig({ ...base, UPSTREAM_BASE_URL: 'http://10.0.0.5:8000/v1/', UPSTREAM_API_KEY: 'k' }).upstream);
    expect(p.name).toBe('compatible');
    expect(p.realtimeTarget('m', 'rs').url).toBe('ws://10.0.0.5:8000/v1/realtime?model=m');
  });

  it.each([
    ['azure (GA path)', (url: string) => ({ UPSTREAM_PROVIDER: 'azure', AZURE_OPENAI_ENDPOINT: url.replace(/\/v1$/, ''), AZURE_OPENAI_API_KEY: 'sk-sim-provider-test', AZURE_OPENAI_DEPLOYMENT: 'gpt-realtime' }), '/openai/v1/realtime'],
    ['compatible (UPSTREAM_BASE_URL)', (url: string) => ({ UPSTREAM_BASE_URL: url, UPSTREAM_API_KEY: 'sk-sim-provider-test' }), '/v1/realtime'],
  ])('%s reaches a real upstream end to end', async (_name, envFor, path) => {
    const sim = new RealtimeSimulator({ apiKey: 'sk-sim-provider-test' });
    await sim.start();
    const config = loadConfig({ ...base, LOG_LEVEL: 'silent', ...envFor(sim.baseUrl) });
    const app = Fastify();
    await app.register(websocket);
    await app.register(realtimeRoutes, {
      config,
      provider: createProvider(config.upstream),
      sessions: new SessionRegistry(),
      authenticate: async () => ({ user: 'u', scopes: ['realtime'], kind: 'api_key' }),
    });
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const c = await TestClient.connect(`${url.replace('http', 'ws')}/v1/realtime`);
      await c.waitFor('session.created');
      c.send({ type: 'response.create' });
      await c.waitFor('response.done');
      expect(sim.connections()[0].path.split('?')[0]).toBe(path);
      c.close();
    } finally {
      await app.close();
      await sim.stop();
    }
  });
});
