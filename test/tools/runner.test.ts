import pino from 'pino';
import { loadConfig } from '../../src/config/config';
import { openDatabase, type SqlDatabase } from '../../src/storage/database';
import { parseToolsFile } from '../../src/tools/config';
import { ToolRunner } from '../../src/tools/runner';
import { ToolService } from '../../src/tools/service';
import type { ParsedEvent } from '../../src/relay/relay-session';
import { TestWebhook, WEBHOOK_SECRET } from './support';

/**
 * The runner on its own, driven as a WebRTC sideband would drive it: upstream events in, a
 * transport with only sendUpstream and createResponse out (no client to tell).
 */
describe('ToolRunner', () => {
  let db: SqlDatabase;
  const webhook = new TestWebhook();
  beforeAll(async () => {
    await webhook.start();
  });
  afterAll(async () => {
    await webhook.stop();
  });
  beforeEach(async () => {
    db = await openDatabase('sqlite::memory:');
  });
  afterEach(async () => {
    await db.close();
  });

  async function runner(): Promise<{ run: ToolRunner; upstream: ParsedEvent[]; creates: ParsedEvent[] }> {
    const config = loadConfig({ NODE_ENV: 'test', UPSTREAM_PROVIDER: 'simulator', TOOL_WEBHOOK_SECRET: WEBHOOK_SECRET, LOG_LEVEL: 'silent' });
    const definitions = parseToolsFile({ tools: [{ name: 'book', parameters: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] }, webhook: { url: `${webhook.baseUrl}/ok` } }] });
    const service = await ToolService.open({ config, db, logger: pino({ level: 'silent' }), definitions });
    const run = new ToolRunner(service, { sessionId: 'sess_1', user: 'ana', tenant: null, model: 'gpt-realtime' });
    const upstream: ParsedEvent[] = [];
    const creates: ParsedEvent[] = [];
    run.attach({ sendUpstream: (e) => upstream.push(e), createResponse: async (e) => void creates.push(e) });
    return { run, upstream, creates };
  }

  const call = { type: 'function_call', call_id: 'call_1', name: 'book', arguments: '{"n":2}', status: 'completed' };

  it('executes a call id once whatever duplicates arrive, and continues once after the response is done', async () => {
    const { run, upstream, creates } = await runner();
    const before = webhook.calls.length;
    run.onUpstreamEvent({ type: 'response.created', response: { id: 'resp_1' } });
    run.onUpstreamEvent({ type: 'response.function_call_arguments.done', call_id: 'call_1', name: 'book', arguments: '{"n":2}' });
    run.onUpstreamEvent({ type: 'response.function_call_arguments.done', call_id: 'call_1', name: 'book', arguments: '{"n":2}' });
    run.onUpstreamEvent({ type: 'response.output_item.done', item: call });
    await run.settled();
    // The output is sent, but the continuation waits for the response that made the call to end.
    expect(upstream).toHaveLength(1);
    expect(creates).toHaveLength(0);
    run.onUpstreamEvent({ type: 'response.done', response: { id: 'resp_1', output: [call] } });
    run.onUpstreamEvent({ type: 'response.done', response: { id: 'resp_1', output: [call] } });
    await run.settled();
    expect(webhook.calls.length - before).toBe(1);
    expect(upstream).toEqual([{ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_1', output: JSON.stringify({ confirmed: true, echo: { n: 2 } }) } }]);
    expect(creates).toEqual([{ type: 'response.create' }]);
  });

  it('does not run a call of a cancelled response (partial arguments)', async () => {
    const { run, upstream } = await runner();
    const before = webhook.calls.length;
    run.onUpstreamEvent({ type: 'response.done', response: { id: 'resp_2', status: 'cancelled', output: [{ ...call, call_id: 'call_9', arguments: '{"n":', status: 'incomplete' }] } });
    await run.settled();
    expect(webhook.calls.length - before).toBe(0);
    expect(upstream).toEqual([]);
  });

  it('refuses a second client output for the same client-tool call', async () => {
    const { run } = await runner();
    run.onUpstreamEvent({ type: 'response.function_call_arguments.done', call_id: 'call_c', name: 'client_side', arguments: '{}' });
    const output = { type: 'conversation.item.create', item: { type: 'function_call_output', call_id: 'call_c', output: 'ok' } };
    expect(run.guardItemCreate(output)).toEqual({ action: 'forward' });
    expect(run.guardItemCreate(output)).toMatchObject({ action: 'reject', error: { code: 'duplicate_call_output' } });
  });
});
