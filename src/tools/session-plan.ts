/**
 * Wires a ToolRunner into a WebSocket session: its guards and taps composed with the session
 * plan's own, its transport bound to the RelaySession once it exists.
 *
 * Budget seam: a response.create the relay sends itself (to continue after a tool output) goes
 * through `admitResponse`, which plan-session.ts sets to its own response.create guard — the
 * same budget check (and, once billing reserves per response, the same reservation) a client's
 * response.create gets. Whoever reworks that guard keeps passing it here.
 */
import type { LockedSessionConfig } from '../auth/principal';
import type { CallControl } from '../relay/call-sideband';
import { errorEvent, type ProtocolError } from '../relay/protocol-errors';
import type { GuardDecision, ParsedEvent, RelaySession, SessionHooks, TapSession } from '../relay/relay-session';
import type { SessionPlan } from '../routes/realtime';
import { composeHooks } from '../session/compose-hooks';
import { attachToCall, type CallToolWatch } from './call-tools';
import { ToolRunner } from './runner';
import type { ToolService } from './service';

export interface ToolSessionContext {
  sessionId: string;
  user: string;
  tenant?: string;
  model: string;
  dialect: 'ga' | 'beta';
  locked?: LockedSessionConfig;
  /** The session's response.create guard (budget): relay-sent continuations pass it too. */
  admitResponse: (event: ParsedEvent) => GuardDecision | Promise<GuardDecision>;
}

export interface ToolSessionPlan {
  runner: ToolRunner;
  hooks: SessionHooks;
  onStarted(session: RelaySession): void;
  /** A WebRTC call's sideband is attached: the runner acts through it (src/tools/call-tools.ts). */
  onCallStarted(control: CallControl): void;
  /** The session a WebRTC call is created with: server tools added. */
  callSession(session: Record<string, unknown>): { session: Record<string, unknown> } | { error: ProtocolError };
  onEnded(): void;
}

export function planToolSession(service: ToolService, ctx: ToolSessionContext): ToolSessionPlan | null {
  if (!service.enabled) return null;
  const runner = new ToolRunner(service, { sessionId: ctx.sessionId, user: ctx.user, tenant: ctx.tenant ?? null, model: ctx.model });
  const lockedTools = Array.isArray(ctx.locked?.tools) ? (ctx.locked.tools as unknown[]) : undefined;
  const initial = runner.initialSessionUpdate(lockedTools, ctx.dialect);
  // Set once a WebRTC call's sideband is attached: the call's own checks (call-tools.ts) run then.
  let call: CallToolWatch | null = null;
  const tap = (event: ParsedEvent, session: TapSession): void => {
    runner.onUpstreamEvent(event);
    call?.onUpstreamEvent(event, session);
  };
  const callOnly = (event: ParsedEvent, session: TapSession): void => call?.onUpstreamEvent(event, session);
  const hooks: SessionHooks = {
    initialUpstreamFrames: initial ? [JSON.stringify(initial)] : [],
    clientGuards: {
      'session.update': runner.guardSessionUpdate,
      'response.create': runner.guardResponseCreate,
      'conversation.item.create': runner.guardItemCreate,
      'relay.tool_approval.response': runner.guardApprovalResponse,
    },
    upstreamTaps: { ...Object.fromEntries(ToolRunner.UPSTREAM_TYPES.map((t) => [t, tap])), 'session.updated': callOnly },
  };
  return {
    runner,
    hooks,
    onStarted(session) {
      runner.attach({
        sendUpstream: (event) => session.sendToUpstream(JSON.stringify(event)),
        createResponse: async (event) => {
          const decision = await ctx.admitResponse(event);
          if (decision.action === 'forward') session.sendResponseCreate(JSON.stringify(event));
          // Refused (over budget): the client hears why the conversation stopped.
          else if (decision.action === 'reject' || decision.action === 'close') session.sendToClient(errorEvent(decision.error));
        },
        sendClient: (event) => session.sendToClient(JSON.stringify(event)),
      });
    },
    onCallStarted(control) {
      call = attachToCall(runner, service, control, { sessionId: ctx.sessionId, user: ctx.user, admitResponse: ctx.admitResponse, toolsLocked: lockedTools !== undefined });
    },
    callSession(session) {
      const merged = runner.withServerTools(Array.isArray(session.tools) ? (session.tools as unknown[]) : []);
      if ('error' in merged) return { error: merged.error.action === 'reject' ? merged.error.error : { type: 'invalid_request_error', code: 'server_tool_name', message: 'A client tool takes a server tool name.' } };
      return { session: { ...session, tools: merged.tools } };
    },
    onEnded: () => runner.close(),
  };
}

/** The session plan with the tool plan's hooks composed after its own. */
export function withToolPlan(plan: SessionPlan, tools: ToolSessionPlan | null): SessionPlan {
  if (!tools) return plan;
  return {
    ...plan,
    hooks: composeHooks(plan.hooks, tools.hooks),
    onStarted: (session) => {
      tools.onStarted(session);
      plan.onStarted?.(session);
    },
    onCallStarted: (control) => {
      tools.onCallStarted(control);
      plan.onCallStarted?.(control);
    },
    // The plan's own call session first (none today), then the server tools.
    callSession: (session) => {
      const inner = plan.callSession?.(session) ?? { session };
      return 'error' in inner ? inner : tools.callSession(inner.session);
    },
    onEnded: (summary) => {
      tools.onEnded();
      return plan.onEnded?.(summary);
    },
  };
}
