import { loadConfig } from '../../src/config/config';
import { createProvider } from '../../src/upstream';
import { callsUnsupportedReason, sidebandTarget } from '../../src/upstream/calls';

function provider(env: Record<string, string>) {
  return createProvider(loadConfig({ NODE_ENV: 'test', RELAY_ADMIN_TOKEN: 'x'.repeat(20), ...env }).upstream);
}

describe('upstream WebRTC call targets', () => {
  it('OpenAI: sideband at wss://…/v1/realtime?call_id= with the Bearer key', () => {
    const p = provider({ UPSTREAM_PROVIDER: 'openai', OPENAI_API_KEY: 'sk-test-openai' });
    const t = sidebandTarget(p, 'gpt-realtime', 'rtc_abc', 'rs_1');
    expect(t.url).toBe('wss://api.openai.com/v1/realtime?call_id=rtc_abc');
    expect(t.headers.Authorization).toBe('Bearer sk-test-openai');
    expect(p.httpTarget('/realtime/calls').url).toBe('https://api.openai.com/v1/realtime/calls');
    expect(callsUnsupportedReason(p)).toBeNull();
  });

  it('Azure GA: /openai/v1/realtime/calls and ?call_id= under the same base, api-key header', () => {
    const p = provider({ UPSTREAM_PROVIDER: 'azure', AZURE_OPENAI_API_KEY: 'az-key', AZURE_OPENAI_RESOURCE: 'myres', REALTIME_API_VERSION: 'ga' });
    expect(p.httpTarget('/realtime/calls').url).toBe('https://myres.openai.azure.com/openai/v1/realtime/calls');
    const t = sidebandTarget(p, 'my-deployment', 'rtc_x', 'rs_1');
    expect(t.url).toBe('wss://myres.openai.azure.com/openai/v1/realtime?call_id=rtc_x');
    expect(t.headers['api-key']).toBe('az-key');
    expect(callsUnsupportedReason(p)).toBeNull();
  });

  it('CometAPI has no WebRTC call API', () => {
    const p = provider({ UPSTREAM_PROVIDER: 'cometapi', COMETAPI_KEY: 'c-key' });
    expect(callsUnsupportedReason(p)).toMatch(/CometAPI/);
  });
});
