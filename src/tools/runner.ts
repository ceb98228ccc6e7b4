/**
 * One session's server-side tools: what the relay does when the model calls a tool defined in
 * TOOLS_FILE, and which client events it refuses so that a tampered app can neither forge a
 * tool's result nor take the relay's tools away.
 *
 * Transport-neutral: it sees upstream events (`onUpstreamEvent`), answers client events
 * (the `guard*` methods, for the WebSocket path), and acts only through a ToolTransport, so a
 * WebRTC sideband drives the same runner with its own transport (and without `sendClient`).
 *
 * The model is NOT told that a call awaits approval: a `function_call_output` is final for its
 * call id, so an interim "waiting for approval" output would use up the only answer the call can
 * get. The model gets one output, the real result (or the refusal); the client is told through
 * `relay.tool_approval.requested` and can say "waiting for approval" in its own UI.
 */
import { createHash } from 'node:crypto';
import type { ErrorObject } from 'ajv';
import type { GuardDecision, ParsedEvent } from '../relay/relay-session';
import type { McpPolicy, ServerToolDefinition } from './config';
import type { ToolService } from './service';
import type { Approval, ToolCallOutcome, ToolCallRecord } from './store';
import { callWebhook } from './webhook';

export interface ToolTransport {
  /** Sends an event upstream on the relay's behalf (conversation.item.create). */
  sendUpstream(event: ParsedEvent): void;
  /** Asks the upstream for a response, through the session's budget check (it may refuse). */
  createResponse(event: ParsedEvent): Promise<void>;
  /** Tells the client (WebSocket sessions). Absent on a WebRTC sideband, where the device is not ours to talk to. */
  sendClient?(event: ParsedEvent): void;
}

export interface ToolSessionInfo {
  sessionId: string;
  user: string;
  tenant: string | null;
  model: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function reject(code: string, message: string, param: string | null = null): GuardDecision {
  return { action: 'reject', error: { type: 'invalid_request_error', code, message, param } };
}

/** The model-facing text of a failed call: JSON, so the model can tell an error from a result. */
function errorOutput(code: string, message: string, extra: Json = {}): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

function describeArgumentErrors(errors: readonly ErrorObject[] | null | undefined): string {
  const parts = (errors ?? []).slice(0, 10).map((e) => {
    const at = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : 'arguments';
    const missing = e.keyword === 'required' ? ` '${String((e.params as { missingProperty?: string }).missingProperty)}'` : '';
    const extra = e.keyword === 'additionalProperties' ? ` '${String((e.params as { additionalProperty?: string }).additionalProperty)}'` : '';
    return `${at} ${e.message ?? 'is invalid'}${missing}${extra}`;
  });
  return parts.join('; ') || 'the arguments do not match the tool schema';
}

/** JSON with object keys sorted: an upstream echo may reorder a tool's keys. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) => (isObject(val) ? Object.fromEntries(Object.keys(val).sort().map((k) => [k, val[k]])) : val));
}

export function renderTool(t: ServerToolDefinition): Json {
  return { type: 'function', name: t.name, ...(t.description !== undefined ? { description: t.description } : {}), parameters: t.parameters };
}

export class ToolRunner {
  private readonly tools: ReadonlyMap<string, ServerToolDefinition>;
  private readonly rendered: Json[];
  /** Call ids the upstream issued in this session, and the name it called. */
  private readonly issued = new Map<string, string>();
  /** Call ids whose output a client already sent (for its own tools): each gets one. */
  private readonly clientAnswered = new Set<string>();
  /** mcp_approval_request ids the upstream issued, and their server label. */
  private readonly mcpRequests = new Map<string, string>();
  /** Invalid-argument calls in a row, per tool (the "call chain" TOOL_MAX_ARGUMENT_ATTEMPTS bounds). */
  private readonly invalidStreak = new Map<string, number>();
  /** Approvals of this session waiting for a decision. */
  private readonly waiting = new Map<string, Approval>();
  private readonly activeResponses = new Set<string>();
  private running = 0;
  /** Outputs sent upstream that no response has been asked for yet. */
  private outputsWaiting = false;
  /** The model exhausted its argument retries: the continuation is created without tools. */
  private noMoreToolCalls = false;
  private readonly ended = new AbortController();
  private transport: ToolTransport | null = null;
  private readonly work = new Set<Promise<void>>();
  /** Outputs the relay itself sent, per call id (a WebRTC sideband sees them come back as items). */
  private readonly ownOutputs = new Map<string, number>();
  /** function_call_output items seen on a sideband, per call id, and those found forged. */
  private readonly seenOutputs = new Map<string, number>();
  private readonly forgedOutputs = new Map<string, number>();
  private readonly seenItemIds = new Set<string>();

  constructor(
    private readonly service: ToolService,
    private readonly info: ToolSessionInfo,
  ) {
    const offered = service.toolsFor(info.tenant);
    this.tools = new Map(offered.map((t) => [t.name, t]));
    this.rendered = offered.map(renderTool);
  }

  attach(transport: ToolTransport): void {
    this.transport = transport;
  }

  /** Ends the session's tool work: pending approvals are expired so no one decides a dead call. */
  close(): void {
    this.ended.abort();
  }

  /** Resolves when every call in progress has finished (tests, orderly shutdown). */
  async settled(): Promise<void> {
    while (this.work.size > 0) await Promise.allSettled([...this.work]);
  }

  // ---- session configuration ------------------------------------------------------------------

  /**
   * The session.update that installs the server tools at connect, after the locked config
   * (whose own tools, if any, are kept). Null when this session is offered no tools.
   */
  initialSessionUpdate(lockedTools: unknown[] | undefined, dialect: 'ga' | 'beta'): Json | null {
    if (this.rendered.length === 0 && !lockedTools?.length) return null;
    const merged = this.mergeTools(lockedTools ?? []);
    if ('error' in merged) {
      // An ephemeral key locked a tool under a server tool's name: the lock wins, and says so.
      this.service.logger.warn({ session_id: this.info.sessionId }, 'a locked session tool takes a server tool name; server tools not installed for this session');
      return null;
    }
    return { type: 'session.update', session: { ...(dialect === 'ga' ? { type: 'realtime' } : {}), tools: merged.tools } };
  }

  /**
   * The client's tools plus the server's: a client tool may not take a server tool's name
   * (it would redefine it), unless it is the server's definition itself; MCP tools of a
   * configured server get the configured require_approval whatever the client asked.
   */
  private mergeTools(clientTools: unknown[]): { tools: unknown[] } | { error: GuardDecision } {
    const out: unknown[] = [];
    for (const [i, t] of clientTools.entries()) {
      if (!isObject(t)) {
        out.push(t);
        continue;
      }
      const type = t.type ?? 'function';
      const name = str(t.name);
      if (type === 'function' && name !== undefined && this.tools.has(name)) {
        const own = JSON.stringify(renderTool(this.tools.get(name) as ServerToolDefinition));
        if (JSON.stringify({ type: 'function', ...t }) === own || JSON.stringify(t) === own) continue;
        return { error: reject('server_tool_name', `Tool '${name}' is defined by the relay; a client tool cannot use its name.`, `tools[${i}].name`) };
      }
      const policy = type === 'mcp' ? this.service.mcpPolicy(str(t.server_label) ?? '') : undefined;
      out.push(policy ? { ...t, require_approval: policy.require_approval } : t);
    }
    return { tools: [...out, ...this.rendered] };
  }

  /** A call's session (created by POST, before any client event): the client's tools plus the server's. */
  withServerTools(clientTools: unknown[]): { tools: unknown[] } | { error: GuardDecision } {
    return this.mergeTools(clientTools);
  }

  /** True when a session (as upstream echoed it) lacks a server tool, or carries a redefined one. */
  lacksServerTools(tools: unknown): boolean {
    if (this.rendered.length === 0) return false;
    const have = new Set((Array.isArray(tools) ? tools : []).map(canonicalJson));
    return this.rendered.some((t) => !have.has(canonicalJson(t)));
  }

  /** The session's tools with the server's put back: a client tool under a server tool's name is dropped. */
  restoredTools(current: unknown): unknown[] {
    const own = (Array.isArray(current) ? current : []).filter((t) => !(isObject(t) && (t.type ?? 'function') === 'function' && this.tools.has(str(t.name) ?? '')));
    const merged = this.mergeTools(own);
    return 'tools' in merged ? merged.tools : this.rendered;
  }

  /**
   * A WebRTC sideband's view of the conversation: a function_call_output item the relay did not
   * send for a server tool's call, or one for a call id the upstream never issued, is forged.
   * The device's data channel cannot be filtered, so this is seen after the fact.
   */
  inspectSidebandItem(event: ParsedEvent): 'server_tool_output' | 'unknown_call_id' | null {
    const item = event.item;
    if (!isObject(item) || item.type !== 'function_call_output') return null;
    // conversation.item.created / .added may both announce one item.
    const itemId = str(item.id);
    if (itemId !== undefined) {
      if (this.seenItemIds.has(itemId)) return null;
      this.seenItemIds.add(itemId);
    }
    const callId = str(item.call_id) ?? '';
    const name = this.issued.get(callId);
    if (name === undefined) return 'unknown_call_id';
    if (!this.tools.has(name)) return null;
    const seen = (this.seenOutputs.get(callId) ?? 0) + 1;
    this.seenOutputs.set(callId, seen);
    const forged = this.forgedOutputs.get(callId) ?? 0;
    // More outputs for this call than the relay sent: this one is not the relay's.
    if (seen - forged <= (this.ownOutputs.get(callId) ?? 0)) return null;
    this.forgedOutputs.set(callId, forged + 1);
    return 'server_tool_output';
  }

  /** session.update (tools in `session`) and response.create (tools in `response`). */
  private guardToolsIn(event: ParsedEvent, field: 'session' | 'response'): GuardDecision {
    const holder = event[field];
    if (!isObject(holder) || !Array.isArray(holder.tools)) return { action: 'forward' };
    const merged = this.mergeTools(holder.tools);
    if ('error' in merged) {
      const e = merged.error;
      if (e.action === 'reject') return { ...e, error: { ...e.error, param: `${field}.${e.error.param ?? 'tools'}` } };
      return e;
    }
    return { action: 'replace', event: { ...event, [field]: { ...holder, tools: merged.tools } } };
  }

  guardSessionUpdate = (event: ParsedEvent): GuardDecision => this.guardToolsIn(event, 'session');
  guardResponseCreate = (event: ParsedEvent): GuardDecision => {
    // Out-of-band input items are conversation items too: the same forgeries are refused there.
    const input = isObject(event.response) ? event.response.input : undefined;
    if (Array.isArray(input)) {
      for (const [i, item] of input.entries()) {
        // Out-of-band input does not join the conversation: it does not use up the call's output.
        const d = this.checkItem(item, `response.input[${i}]`, false);
        if (d.action !== 'forward') return d;
      }
    }
    return this.guardToolsIn(event, 'response');
  };

  // ---- integrity of client items ----------------------------------------------------------------

  guardItemCreate = (event: ParsedEvent): GuardDecision => this.checkItem(event.item, 'item');

  private checkItem(item: unknown, param: string, inConversation = true): GuardDecision {
    if (!isObject(item)) return { action: 'forward' };
    if (item.type === 'function_call_output') {
      const callId = str(item.call_id) ?? '';
      const name = this.issued.get(callId);
      if (name === undefined) return reject('unknown_call_id', `No function call with call_id '${callId}' was issued in this session.`, `${param}.call_id`);
      if (this.tools.has(name)) return reject('server_tool_output', `Call '${callId}' is to the server tool '${name}'; its output comes from the relay, not the client.`, `${param}.call_id`);
      if (this.clientAnswered.has(callId)) return reject('duplicate_call_output', `Call '${callId}' already has an output.`, `${param}.call_id`);
      if (inConversation) this.clientAnswered.add(callId);
      return { action: 'forward' };
    }
    if (item.type === 'function_call' && this.tools.has(str(item.name) ?? '')) {
      // A made-up call to a server tool would put a result the relay never produced in the history.
      return reject('server_tool_call', `Calls to the server tool '${String(item.name)}' come from the model, not the client.`, `${param}.name`);
    }
    if (item.type === 'mcp_approval_response') {
      const id = str(item.approval_request_id) ?? '';
      const label = this.mcpRequests.get(id);
      if (label === undefined) return reject('unknown_approval_request', `No MCP approval request '${id}' was issued in this session.`, `${param}.approval_request_id`);
      if (this.service.mcpPolicy(label)) return reject('mcp_approval_managed', `Approvals for MCP server '${label}' are decided through the relay.`, `${param}.approval_request_id`);
    }
    return { action: 'forward' };
  }

  /** `relay.tool_approval.response` {approval_id, approve, reason}: the session's user decides one of its `user` approvals. Never forwarded. */
  guardApprovalResponse = async (event: ParsedEvent): Promise<GuardDecision> => {
    const id = str(event.approval_id) ?? '';
    const pending = this.waiting.get(id);
    if (!pending || pending.approver !== 'user') return reject('unknown_approval', `No approval '${id}' awaits this session's decision.`, 'approval_id');
    if (typeof event.approve !== 'boolean') return reject('invalid_approval', "'approve' must be true or false.", 'approve');
    const reason = event.reason === undefined || event.reason === null ? null : str(event.reason)?.slice(0, 1000);
    if (reason === undefined) return reject('invalid_approval', "'reason' must be a string.", 'reason');
    const result = await this.service.approvals.decide(id, event.approve, reason, `user:${this.info.user}`);
    if (!result.ok) return reject(result.reason === 'not_found' ? 'unknown_approval' : `approval_${result.reason}`, `Approval '${id}' can no longer be decided (${result.reason.replace('_', ' ')}).`, 'approval_id');
    return { action: 'consume' };
  };

  // ---- upstream ---------------------------------------------------------------------------------

  /** Event types the runner reads from the upstream. */
  static readonly UPSTREAM_TYPES = [
    'response.created',
    'response.done',
    'response.function_call_arguments.done',
    'response.output_item.done',
    'conversation.item.created',
    'conversation.item.added',
    'conversation.item.done',
  ] as const;

  onUpstreamEvent = (event: ParsedEvent): void => {
    switch (event.type) {
      case 'response.created': {
        const id = str((event.response as Json | undefined)?.id);
        if (id) this.activeResponses.add(id);
        return;
      }
      case 'response.done': {
        const response = isObject(event.response) ? event.response : {};
        const id = str(response.id);
        if (id) this.activeResponses.delete(id);
        if (Array.isArray(response.output)) for (const item of response.output) this.onItem(item);
        this.maybeContinue();
        return;
      }
      case 'response.function_call_arguments.done':
        this.onFunctionCall(str(event.call_id), str(event.name), str(event.arguments));
        return;
      case 'response.output_item.done':
        this.onItem(event.item);
        return;
      default:
        // conversation.item.*: a function call there may still be streaming (empty arguments);
        // only MCP approval requests are taken from these.
        if (isObject(event.item) && event.item.type === 'mcp_approval_request') this.onMcpApprovalRequest(event.item);
    }
  };

  /** A finished output item (response.output_item.done, response.done). */
  private onItem(item: unknown): void {
    if (!isObject(item)) return;
    if (item.type === 'function_call') {
      // A cancelled response leaves a call with partial arguments: the model never made it.
      if (item.status !== undefined && item.status !== 'completed') return;
      this.onFunctionCall(str(item.call_id), str(item.name), str(item.arguments));
    } else if (item.type === 'mcp_approval_request') this.onMcpApprovalRequest(item);
  }

  private onFunctionCall(callId: string | undefined, name: string | undefined, args: string | undefined): void {
    // Each call id runs at most once, whichever of its several announcements comes first.
    if (!callId || name === undefined || this.issued.has(callId)) return;
    // An item still streaming has no arguments yet; wait for its done event.
    if (args === undefined) return;
    this.issued.set(callId, name);
    const tool = this.tools.get(name);
    if (tool) {
      this.track(this.runCall(tool, callId, args), () =>
        this.sendOutput(callId, errorOutput('tool_unavailable', `The relay could not run ${tool.name} (approval or audit storage unavailable). Nothing was done; tell the user.`)),
      );
    }
  }

  private onMcpApprovalRequest(item: Json): void {
    const id = str(item.id);
    const label = str(item.server_label);
    if (!id || label === undefined || this.mcpRequests.has(id)) return;
    this.mcpRequests.set(id, label);
    const policy = this.service.mcpPolicy(label);
    if (policy) {
      this.track(this.runMcpApproval(policy, id, str(item.name) ?? '', str(item.arguments) ?? '{}'), () =>
        this.sendUpstream({ type: 'conversation.item.create', item: { type: 'mcp_approval_response', approval_request_id: id, approve: false, reason: 'the approval could not be requested' } }),
      );
    }
  }

  /** Runs a call in the background; `onFailure` gives the model an answer if the call threw before it sent one. */
  private track(p: Promise<void>, onFailure: () => void): void {
    this.running++;
    const done = p
      .catch((err: unknown) => {
        this.service.logger.error({ err, session_id: this.info.sessionId }, 'server tool call failed');
        onFailure();
      })
      .finally(() => {
        this.running--;
        this.work.delete(done);
        this.maybeContinue();
      });
    this.work.add(done);
  }

  /** Once every call of the turn has its output and no response is running: one response.create. */
  private maybeContinue(): void {
    if (!this.outputsWaiting || this.running > 0 || this.activeResponses.size > 0 || this.ended.signal.aborted || !this.transport) return;
    this.outputsWaiting = false;
    // tool_choice applies to this one response: the next turn may call tools again.
    const event: Json = this.noMoreToolCalls ? { type: 'response.create', response: { tool_choice: 'none' } } : { type: 'response.create' };
    this.noMoreToolCalls = false;
    void this.transport.createResponse(event).catch((err: unknown) => this.service.logger.warn({ err, session_id: this.info.sessionId }, 'continuing after a tool output failed'));
  }

  private sendUpstream(event: Json): void {
    if (this.ended.signal.aborted) return;
    this.transport?.sendUpstream(event);
    this.outputsWaiting = true;
  }

  private sendOutput(callId: string, output: string): void {
    this.ownOutputs.set(callId, (this.ownOutputs.get(callId) ?? 0) + 1);
    this.sendUpstream({ type: 'conversation.item.create', item: { type: 'function_call_output', call_id: callId, output } });
  }

  // ---- one function call ------------------------------------------------------------------------------

  private async runCall(tool: ServerToolDefinition, callId: string, argsText: string): Promise<void> {
    const audit = this.auditBase(tool.name, 'function', callId, argsText);
    let parsed: unknown;
    let problem: string | null = null;
    try {
      parsed = JSON.parse(argsText);
    } catch {
      problem = 'the arguments are not valid JSON';
    }
    if (problem === null) {
      const validate = this.service.validator(tool.name);
      if (validate && !validate(parsed)) problem = describeArgumentErrors(validate.errors);
    }
    if (problem !== null) {
      const streak = (this.invalidStreak.get(tool.name) ?? 0) + 1;
      this.invalidStreak.set(tool.name, streak);
      const left = this.service.maxArgumentAttempts - streak;
      let output: string;
      if (left > 0) {
        output = errorOutput('invalid_arguments', `Invalid arguments for ${tool.name}: ${problem}. Correct them and call ${tool.name} again.`, { attempts_left: left });
      } else {
        this.noMoreToolCalls = true;
        this.invalidStreak.set(tool.name, 0);
        output = errorOutput('invalid_arguments', `Invalid arguments for ${tool.name}: ${problem}. No attempts are left: do not call it again; tell the user the request could not be completed.`, { attempts_left: 0 });
      }
      this.sendOutput(callId, output);
      await this.finishAudit(audit, 'invalid_arguments', output);
      return;
    }
    this.invalidStreak.set(tool.name, 0);

    if (tool.approval !== 'none') {
      const decided = await this.awaitApproval('function', tool.name, callId, argsText, parsed, tool.approval, tool.approval_timeout_s);
      Object.assign(audit, { approval_id: decided.id, approval_decision: decided.status, approval_by: decided.decided_by, approval_at: decided.decided_at });
      if (decided.status !== 'approved') {
        const why = decided.status === 'rejected' ? `was rejected${decided.reason ? `: ${decided.reason}` : ''}` : 'was not approved in time';
        const output = errorOutput(decided.status === 'rejected' ? 'approval_rejected' : 'approval_timeout', `The call to ${tool.name} ${why}. Nothing was done; tell the user.`);
        this.sendOutput(callId, output);
        await this.finishAudit(audit, decided.status === 'rejected' ? 'rejected' : 'expired', output);
        return;
      }
    }
    if (this.ended.signal.aborted) return;

    const result = await callWebhook(tool.webhook, { call_id: callId, name: tool.name, arguments: parsed, session_id: this.info.sessionId, user: this.info.user, tenant: this.info.tenant, model: this.info.model }, this.service.webhookSecret);
    this.service.metrics?.webhookLatency(tool.name, result.latencyMs / 1000, result.status === null ? result.ok ? 'ok' : result.error : `${Math.floor(result.status / 100)}xx`);
    audit.webhook_status = result.status;
    audit.latency_ms = result.latencyMs;
    let output: string;
    if (result.ok) output = typeof result.output === 'string' ? result.output : JSON.stringify(result.output ?? null);
    else output = errorOutput(`tool_${result.error}`, `${result.message} Nothing is known to have been done; tell the user the action could not be completed right now.`);
    this.sendOutput(callId, output);
    await this.finishAudit(audit, result.ok ? 'completed' : 'webhook_error', output);
  }

  // ---- MCP approvals ----------------------------------------------------------------------------------

  private async runMcpApproval(policy: McpPolicy, requestId: string, name: string, argsText: string): Promise<void> {
    const toolLabel = `mcp:${policy.server_label}`;
    const audit = this.auditBase(toolLabel, 'mcp', requestId, argsText);
    let parsed: unknown = argsText;
    try {
      parsed = JSON.parse(argsText);
    } catch {
      /* shown as the text it is */
    }
    const decided = await this.awaitApproval('mcp', `${policy.server_label}.${name}`, requestId, argsText, parsed, policy.approval, policy.approval_timeout_s);
    Object.assign(audit, { approval_id: decided.id, approval_decision: decided.status, approval_by: decided.decided_by, approval_at: decided.decided_at });
    const approve = decided.status === 'approved';
    const reason = approve ? undefined : decided.status === 'rejected' ? (decided.reason ?? 'rejected') : 'not approved in time';
    this.sendUpstream({ type: 'conversation.item.create', item: { type: 'mcp_approval_response', approval_request_id: requestId, approve, ...(reason ? { reason } : {}) } });
    await this.finishAudit(audit, approve ? 'approved' : decided.status === 'rejected' ? 'rejected' : 'expired', '');
  }

  // ---- approvals -----------------------------------------------------------------------------------------

  private async awaitApproval(kind: 'function' | 'mcp', name: string, callId: string, argsText: string, parsed: unknown, approver: 'user' | 'operator', timeoutS: number): Promise<Approval> {
    const approval = await this.service.approvals.store.create({
      session_id: this.info.sessionId,
      user: this.info.user,
      tenant: this.info.tenant,
      call_id: callId,
      tool: name,
      kind,
      approver,
      arguments: argsText,
      expires_at: Date.now() + timeoutS * 1000,
    });
    this.waiting.set(approval.id, approval);
    try {
      if (approver === 'user') {
        this.transport?.sendClient?.({
          type: 'relay.tool_approval.requested',
          approval_id: approval.id,
          call_id: callId,
          name,
          arguments: parsed,
          expires_at: Math.floor(approval.expires_at / 1000),
        });
      }
      return await this.service.approvals.wait(approval, this.ended.signal);
    } finally {
      this.waiting.delete(approval.id);
    }
  }

  // ---- audit ---------------------------------------------------------------------------------------------------

  private auditBase(tool: string, kind: 'function' | 'mcp', callId: string, argsText: string): ToolCallRecord {
    return {
      session_id: this.info.sessionId,
      user: this.info.user,
      tenant: this.info.tenant,
      tool,
      kind,
      call_id: callId,
      arguments: this.service.auditArguments === 'full' ? argsText : null,
      arguments_sha256: createHash('sha256').update(argsText).digest('hex'),
      outcome: 'completed',
      approval_id: null,
      approval_decision: null,
      approval_by: null,
      approval_at: null,
      webhook_status: null,
      latency_ms: null,
      output_bytes: 0,
    };
  }

  private async finishAudit(audit: ToolCallRecord, outcome: ToolCallOutcome, output: string): Promise<void> {
    audit.outcome = outcome;
    audit.output_bytes = Buffer.byteLength(output);
    this.service.metrics?.call(audit.tool, outcome);
    try {
      await this.service.calls.record(audit);
    } catch (err) {
      this.service.logger.error({ err, session_id: this.info.sessionId, call_id: audit.call_id }, 'recording a tool call in the audit table failed');
    }
  }
}
