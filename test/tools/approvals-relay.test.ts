import { RELAY_ADMIN_TOKEN } from '../support/relay-instance';
import { delay } from '../support/ws-client';
import { connect, nthDone, outputItems, outputsSentUpstream, startToolRelay, userText, type Ev, type ToolRelay } from './support';

const admin = { authorization: `Bearer ${RELAY_ADMIN_TOKEN}` };
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

describe('tool approvals', () => {
  let t: ToolRelay;
  beforeEach(async () => {
    t = await startToolRelay();
  });
  afterEach(async () => {
    await t.close();
  });

  it('holds a user tool until its user approves over HTTP; nobody else can see or decide it', async () => {
    const { c, key } = await connect(t.r, 'hana');
    c.send(userText('pay_user 20 dollars'));
    c.send({ type: 'response.create' });
    const requested = await c.waitFor('relay.tool_approval.requested');
    const first = await nthDone(c, 1);
    expect(requested).toMatchObject({ name: 'pay_user', call_id: outputItems(first)[0]!.call_id, arguments: { party_size: 1, name: 'sample' } });
    expect(requested.expires_at).toEqual(expect.any(Number));
    await delay(200);
    expect(t.webhook.calls).toHaveLength(0);
    expect(outputsSentUpstream(t.r)).toHaveLength(0);

    const list = await t.r.request<{ data: Ev[] }>('GET', '/v1/tool_approvals?status=pending', { headers: bearer(key) });
    expect(list.status).toBe(200);
    expect(list.body.data.map((a) => a.id)).toEqual([requested.approval_id]);
    const otherKey = await t.r.createKey('ivan', ['realtime']);
    expect((await t.r.request<{ data: Ev[] }>('GET', '/v1/tool_approvals?status=pending', { headers: bearer(otherKey) })).body.data).toEqual([]);
    const stolen = await t.r.request('POST', `/v1/tool_approvals/${String(requested.approval_id)}`, { headers: bearer(otherKey), body: { approve: true } });
    expect(stolen.status).toBe(404);
    expect(stolen.body).toMatchObject({ error: { code: 'approval_not_found' } });

    const ok = await t.r.request<Ev>('POST', `/v1/tool_approvals/${String(requested.approval_id)}`, { headers: bearer(key), body: { approve: true, reason: 'yes' } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ status: 'approved', decided_by: 'user:hana' });
    await nthDone(c, 2);
    expect(t.webhook.calls).toHaveLength(1);
    expect(outputsSentUpstream(t.r)[0]!.output).toContain('confirmed');
    const again = await t.r.request('POST', `/v1/tool_approvals/${String(requested.approval_id)}`, { headers: bearer(key), body: { approve: false } });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: { code: 'approval_already_decided' } });
    c.close();
  });

  it('takes the user decision as a relay.tool_approval.response event, never forwarded upstream', async () => {
    const { c } = await connect(t.r, 'jo');
    c.send(userText('pay_user'));
    c.send({ type: 'response.create' });
    const requested = await c.waitFor('relay.tool_approval.requested');
    c.send({ type: 'relay.tool_approval.response', event_id: 'bad', approval_id: 'tap_nope', approve: true });
    expect((await c.waitFor((e) => e.type === 'error' && (e.error as Ev).event_id === 'bad')).error).toMatchObject({ code: 'unknown_approval' });
    c.send({ type: 'relay.tool_approval.response', approval_id: requested.approval_id, approve: true, reason: 'go' });
    await nthDone(c, 2);
    expect(t.webhook.calls).toHaveLength(1);
    const types = t.r.relay.services.simulator!.stats.receivedClientEvents.map((e) => e.type);
    expect(types).not.toContain('relay.tool_approval.response');
    c.close();
  });

  it('holds an operator tool for an operator: the client is not asked and cannot decide it', async () => {
    const { c, key } = await connect(t.r, 'kim');
    c.send(userText('wire_operator the money'));
    c.send({ type: 'response.create' });
    await nthDone(c, 1);
    let pending: Ev[] = [];
    for (let i = 0; i < 50 && pending.length === 0; i++) {
      pending = (await t.r.request<{ data: Ev[] }>('GET', '/admin/tool_approvals?status=pending', { headers: admin })).body.data;
      if (pending.length === 0) await delay(50);
    }
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ name: 'wire_operator', approver: 'operator', user: 'kim', status: 'pending' });
    expect(c.types()).not.toContain('relay.tool_approval.requested');
    const id = String(pending[0]!.id);
    expect((await t.r.request('POST', `/v1/tool_approvals/${id}`, { headers: bearer(key), body: { approve: true } })).status).toBe(404);
    c.send({ type: 'relay.tool_approval.response', event_id: 'self', approval_id: id, approve: true });
    await c.waitFor((e) => e.type === 'error' && (e.error as Ev).event_id === 'self');
    expect(t.webhook.calls).toHaveLength(0);
    const decided = await t.r.request<Ev>('POST', `/admin/tool_approvals/${id}`, { headers: admin, body: { approve: true } });
    expect(decided.status).toBe(200);
    await nthDone(c, 2);
    expect(t.webhook.calls).toHaveLength(1);
    c.close();
  });

  it('turns a rejection into an output saying so, and runs nothing', async () => {
    const { c } = await connect(t.r, 'lou');
    c.send(userText('pay_user'));
    c.send({ type: 'response.create' });
    const requested = await c.waitFor('relay.tool_approval.requested');
    // An operator may decide a user tool too.
    const res = await t.r.request<Ev>('POST', `/admin/tool_approvals/${String(requested.approval_id)}`, { headers: admin, body: { approve: false, reason: 'too expensive' } });
    expect(res.body).toMatchObject({ status: 'rejected', reason: 'too expensive' });
    const answer = await nthDone(c, 2);
    expect(outputItems(answer)[0]).toMatchObject({ type: 'message' });
    const err = JSON.parse(outputsSentUpstream(t.r)[0]!.output) as { error: { code: string; message: string } };
    expect(err.error.code).toBe('approval_rejected');
    expect(err.error.message).toContain('too expensive');
    expect(t.webhook.calls).toHaveLength(0);
    c.close();
  });

  it('times out an undecided approval (approval_timeout_s): output saying so, nothing executed, late decisions refused', async () => {
    const { c, key } = await connect(t.r, 'max');
    c.send(userText('pay_quick'));
    c.send({ type: 'response.create' });
    const requested = await c.waitFor('relay.tool_approval.requested');
    await nthDone(c, 2, 6000);
    const err = JSON.parse(outputsSentUpstream(t.r)[0]!.output) as { error: { code: string } };
    expect(err.error.code).toBe('approval_timeout');
    expect(t.webhook.calls).toHaveLength(0);
    const late = await t.r.request('POST', `/v1/tool_approvals/${String(requested.approval_id)}`, { headers: bearer(key), body: { approve: true } });
    expect(late.status).toBe(409);
    expect(late.body).toMatchObject({ error: { code: 'approval_expired' } });
    await delay(100);
    expect(t.webhook.calls).toHaveLength(0);
    c.close();
  });

  it('runs the MCP approval flow for a listed server: forced require_approval, client answers refused, the relay answers', async () => {
    const { c } = await connect(t.r, 'ned');
    c.send({ type: 'session.update', session: { type: 'realtime', tools: [{ type: 'mcp', server_label: 'payments', server_url: 'https://mcp.example/sse', allowed_tools: ['charge'], require_approval: 'never' }] } });
    await c.waitFor((e) => e.type === 'session.updated' && JSON.stringify(e).includes('payments'));
    const sentUpdate = t.r.relay.services.simulator!.stats.receivedClientEvents.filter((e) => e.type === 'session.update').pop()!;
    const mcpTool = (JSON.parse(sentUpdate.raw).session.tools as Ev[]).find((x) => x.type === 'mcp')!;
    expect(mcpTool.require_approval).toBe('always');

    c.send(userText('charge it through payments'));
    c.send({ type: 'response.create' });
    const first = await nthDone(c, 1);
    const request = outputItems(first)[0]!;
    expect(request).toMatchObject({ type: 'mcp_approval_request', server_label: 'payments', name: 'charge' });
    const asked = await c.waitFor('relay.tool_approval.requested');
    expect(asked).toMatchObject({ call_id: request.id, name: 'payments.charge' });

    c.send({ type: 'conversation.item.create', event_id: 'self', item: { type: 'mcp_approval_response', approval_request_id: request.id, approve: true } });
    expect((await c.waitFor((e) => e.type === 'error' && (e.error as Ev).event_id === 'self')).error).toMatchObject({ code: 'mcp_approval_managed' });

    c.send({ type: 'relay.tool_approval.response', approval_id: asked.approval_id, approve: true });
    const second = await nthDone(c, 2);
    expect(outputItems(second)[0]).toMatchObject({ type: 'mcp_call', approval_request_id: request.id, output: 'simulated MCP result' });
    const injected = t.r.relay.services.simulator!.stats.receivedClientEvents
      .filter((e) => e.type === 'conversation.item.create')
      .map((e) => (JSON.parse(e.raw) as { item: Ev }).item)
      .filter((i) => i.type === 'mcp_approval_response');
    expect(injected).toEqual([{ type: 'mcp_approval_response', approval_request_id: request.id, approve: true }]);
    c.close();
  });
});
