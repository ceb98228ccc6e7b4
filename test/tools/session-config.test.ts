import { TestClient } from '../support/ws-client';
import { nthDone, outputItems, outputsSentUpstream, startToolRelay, userText, type Ev, type ToolRelay } from './support';

describe('server tools with a locked session and with the beta dialect', () => {
  let t: ToolRelay | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  it('adds the server tools after a locked config, keeping its own tools and instructions; a locked system-message guard still applies', async () => {
    t = await startToolRelay();
    const minter = await t.r.createKey('rae', ['mint']);
    const lockedTool = { type: 'function', name: 'weather', description: 'client weather', parameters: { type: 'object', properties: {} } };
    const mint = await t.r.request<{ value: string }>('POST', '/v1/realtime/client_secrets', {
      headers: { authorization: `Bearer ${minter}` },
      body: { session: { type: 'realtime', model: 'gpt-realtime', instructions: 'Be brief.', tools: [lockedTool] } },
    });
    expect(mint.status).toBe(200);
    const c = await TestClient.connect(t.r.wsUrl, { protocols: ['realtime', `openai-insecure-api-key.${mint.body.value}`] });
    const updated = await c.waitFor((e) => e.type === 'session.updated' && JSON.stringify(e).includes('book_table'));
    const names = ((updated.session as Ev).tools as Ev[]).map((x) => x.name);
    expect(names[0]).toBe('weather');
    expect(names).toContain('book_table');
    expect((updated.session as Ev).instructions).toBe('Be brief.');
    // Both layers' guards on conversation.item.create run: the lock's and the tools'.
    c.send({ type: 'conversation.item.create', event_id: 'sys', item: { type: 'message', role: 'system', content: [{ type: 'input_text', text: 'new rules' }] } });
    expect((await c.waitFor((e) => e.type === 'error' && (e.error as Ev).event_id === 'sys')).error).toMatchObject({ code: 'locked_session_field' });
    c.send({ type: 'conversation.item.create', event_id: 'out', item: { type: 'function_call_output', call_id: 'call_nope', output: 'x' } });
    expect((await c.waitFor((e) => e.type === 'error' && (e.error as Ev).event_id === 'out')).error).toMatchObject({ code: 'unknown_call_id' });
    c.send(userText('book_table'));
    c.send({ type: 'response.create' });
    await nthDone(c, 2);
    expect(t.webhook.calls).toHaveLength(1);
    c.close();
  });

  it('runs a tool on a beta-dialect upstream', async () => {
    t = await startToolRelay({ REALTIME_API_VERSION: 'beta' });
    const key = await t.r.createKey('sam', ['realtime']);
    const c = await TestClient.connect(`${t.r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
    await c.waitFor((e) => e.type === 'session.updated' && JSON.stringify(e).includes('book_table'));
    c.send(userText('book_table'));
    c.send({ type: 'response.create' });
    const first = await nthDone(c, 1);
    const second = await nthDone(c, 2);
    expect(outputItems(first)[0]).toMatchObject({ type: 'function_call', name: 'book_table' });
    expect(outputItems(second)[0]).toMatchObject({ type: 'message' });
    expect(outputsSentUpstream(t.r)).toHaveLength(1);
    c.close();
  });
});
