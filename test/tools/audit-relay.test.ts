import { RELAY_ADMIN_TOKEN } from '../support/relay-instance';
import { delay } from '../support/ws-client';
import { connect, nthDone, outputsSentUpstream, startToolRelay, userText, type Ev, type ToolRelay } from './support';

const admin = { authorization: `Bearer ${RELAY_ADMIN_TOKEN}` };

async function auditRows(t: ToolRelay, n: number): Promise<Ev[]> {
  for (let i = 0; i < 100; i++) {
    const res = await t.r.request<{ data: Ev[] }>('GET', '/admin/tool_calls', { headers: admin });
    if (res.body.data.length >= n) return res.body.data;
    await delay(50);
  }
  throw new Error(`fewer than ${n} audit rows`);
}

describe('tool audit trail and metrics', () => {
  let t: ToolRelay | null = null;
  afterEach(async () => {
    await t?.close();
    t = null;
  });

  it('records each call (arguments in full, approval, webhook status, latency, output size) as JSON and CSV, and counts it in /metrics', async () => {
    t = await startToolRelay();
    const { c } = await connect(t.r, 'olga', 'acme');
    c.send(userText('book_table'));
    c.send({ type: 'response.create' });
    await nthDone(c, 2);
    c.send(userText('flaky_tool'));
    c.send({ type: 'response.create' });
    await nthDone(c, 4);
    c.send(userText('pay_user'));
    c.send({ type: 'response.create' });
    const asked = await c.waitFor('relay.tool_approval.requested');
    c.send({ type: 'relay.tool_approval.response', approval_id: asked.approval_id, approve: false, reason: 'no, thanks' });
    await nthDone(c, 6);
    c.close();

    const rows = await auditRows(t, 3);
    const outputs = outputsSentUpstream(t.r);
    expect(rows.map((r) => [r.tool, r.outcome])).toEqual([
      ['book_table', 'completed'],
      ['flaky_tool', 'webhook_error'],
      ['pay_user', 'rejected'],
    ]);
    const args = JSON.stringify({ party_size: 1, name: 'sample' });
    expect(rows[0]).toMatchObject({
      user: 'olga',
      tenant: 'acme',
      kind: 'function',
      call_id: outputs[0]!.call_id,
      arguments: args,
      arguments_sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      webhook_status: 200,
      latency_ms: expect.any(Number),
      output_bytes: Buffer.byteLength(outputs[0]!.output),
      approval_decision: null,
    });
    expect(rows[1]).toMatchObject({ webhook_status: 503, output_bytes: Buffer.byteLength(outputs[1]!.output) });
    expect(rows[2]).toMatchObject({ approval_id: asked.approval_id, approval_decision: 'rejected', approval_by: 'user:olga', approval_at: expect.any(Number), webhook_status: null });

    const csv = await t.r.request<string>('GET', '/admin/tool_calls?tool=book_table', { headers: { ...admin, accept: 'text/csv' } });
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const lines = csv.body.trim().split('\r\n');
    expect(lines[0]).toBe('id,created_at,session_id,user,tenant,tool,kind,call_id,arguments,arguments_sha256,outcome,approval_id,approval_decision,approval_by,approval_at,webhook_status,latency_ms,output_bytes');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toContain(`"${args.replace(/"/g, '""')}"`);

    const denied = await t.r.request('GET', '/admin/tool_calls', { headers: { authorization: `Bearer ${await t.r.createKey('olga', ['realtime'])}` } });
    expect(denied.status).toBe(403);

    const metrics = await t.r.request<string>('GET', '/metrics');
    expect(metrics.body).toMatch(/relay_tool_calls_total\{tool="book_table",outcome="completed"\} 1/);
    expect(metrics.body).toMatch(/relay_tool_calls_total\{tool="pay_user",outcome="rejected"\} 1/);
    expect(metrics.body).toMatch(/relay_tool_webhook_duration_seconds_count\{tool="flaky_tool",status="5xx"\} 1/);
    expect(metrics.body).toMatch(/relay_tool_approvals_pending 0/);
  });

  it('keeps only the SHA-256 of the arguments with TOOL_AUDIT_ARGUMENTS=hash', async () => {
    t = await startToolRelay({ TOOL_AUDIT_ARGUMENTS: 'hash' });
    const { c } = await connect(t.r, 'pia');
    c.send(userText('book_table'));
    c.send({ type: 'response.create' });
    await nthDone(c, 2);
    c.close();
    const [row] = await auditRows(t, 1);
    expect(row!.arguments).toBeNull();
    const { createHash } = await import('node:crypto');
    expect(row!.arguments_sha256).toBe(createHash('sha256').update(JSON.stringify({ party_size: 1, name: 'sample' })).digest('hex'));
  });

  it('puts the continuation response.create through the budget check: over budget, it is refused, not sent', async () => {
    t = await startToolRelay();
    const { c } = await connect(t.r, 'quinn');
    c.send(userText('pay_user'));
    c.send({ type: 'response.create' });
    const asked = await c.waitFor('relay.tool_approval.requested');
    await nthDone(c, 1);
    const put = await t.r.relay.app.inject({ method: 'PUT', url: '/admin/budgets/user/quinn', headers: admin, payload: { total_usd: '0' } });
    expect(put.statusCode).toBe(200);
    c.send({ type: 'relay.tool_approval.response', approval_id: asked.approval_id, approve: true });
    const refused = await c.waitFor((e) => e.type === 'error' && (e.error as Ev).code === 'budget_exceeded');
    expect(refused.error).toMatchObject({ type: 'insufficient_quota' });
    await delay(200);
    // The tool ran (it was approved) and its output is in the conversation, but no response was created.
    expect(t.webhook.calls).toHaveLength(1);
    expect(t.r.relay.services.simulator!.stats.receivedClientEvents.filter((e) => e.type === 'response.create')).toHaveLength(1);
    c.close();
  });
});
