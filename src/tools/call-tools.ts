/**
 * Server-side tools on a WebRTC call (issue 16 items 6 and 4): the device's media and data channel
 * go straight to the provider, so the relay runs the tools over the call's sideband.
 *
 * - The session's ToolRunner acts through the sideband: outputs are sent there, and the
 *   continuation response.create passes the session plan's response.create admission (budget
 *   reservation) first, then goes out as the call's own request (its hold follows the response).
 *   Nothing is sent to the device: its data channel is not the relay's.
 * - The device may send session.update over its data channel and drop or redefine a server tool;
 *   the relay sees the session.updated on the sideband and puts the server tools back (as the call
 *   puts back locked fields). When the key's lock sets the tools, the lock's own restore carries the
 *   server tools (RelayCall.lockUpdate) and this one stays out of its way.
 * - A function_call_output item the device added for a server tool's call, or for a call id the
 *   model never issued, cannot be refused (it already reached the model); it is counted
 *   (relay_call_forged_tool_outputs_total) and, by CALL_FORGED_TOOL_OUTPUT_ACTION, ends the call
 *   (hangup, the default) or is logged as an incident (log).
 */
import type { CallControl } from '../relay/call-sideband';
import { CloseCode } from '../relay/close-codes';
import { errorEvent } from '../relay/protocol-errors';
import type { GuardDecision, ParsedEvent, TapSession } from '../relay/relay-session';
import type { ToolRunner } from './runner';
import type { ToolService } from './service';

export interface CallToolContext {
  sessionId: string;
  user: string;
  /** The session plan's response.create guard (budget reservation). */
  admitResponse: (event: ParsedEvent) => GuardDecision | Promise<GuardDecision>;
  /** The key's lock sets `tools`: the lock restore keeps the server tools, not this watch. */
  toolsLocked: boolean;
}

/** Consecutive tool restores without a session.updated that has them: then the relay stops trying (an upstream that rewrites tools would loop). */
const MAX_RESTORES = 3;

export interface CallToolWatch {
  onUpstreamEvent(event: ParsedEvent, session: TapSession): void;
  /** Forged outputs seen on this call (tests, logs). */
  readonly forgedOutputs: number;
}

export function attachToCall(runner: ToolRunner, service: ToolService, control: CallControl, ctx: CallToolContext): CallToolWatch {
  runner.attach({
    sendUpstream: (event) => control.sendToUpstream(JSON.stringify(event)),
    createResponse: async (event) => {
      const decision = await ctx.admitResponse(event);
      if (decision.action === 'forward') control.sendResponseCreate(JSON.stringify(event));
      else if (decision.action === 'replace') control.sendResponseCreate(JSON.stringify(decision.event));
      // Refused (over budget): a call has no client channel; a relay notice ends the call with its code.
      else if (decision.action === 'reject' || decision.action === 'close') control.sendToClient(errorEvent(decision.error));
    },
  });
  const log = service.logger.child({ session_id: ctx.sessionId, user: ctx.user });
  let restores = 0;
  const watch = {
    forgedOutputs: 0,
    onUpstreamEvent(event: ParsedEvent, session: TapSession): void {
      if (event.type === 'session.updated') {
        if (ctx.toolsLocked) return;
        const s = event.session as { tools?: unknown } | undefined;
        if (!runner.lacksServerTools(s?.tools)) {
          restores = 0;
          return;
        }
        if (restores >= MAX_RESTORES) return;
        restores++;
        log.warn({ event: 'call_server_tools_restored' }, 'call: the session lost a server tool (device session.update); putting the server tools back');
        session.sendToUpstream(JSON.stringify({ type: 'session.update', session: { type: 'realtime', tools: runner.restoredTools(s?.tools) } }));
        return;
      }
      if (event.type !== 'conversation.item.created' && event.type !== 'conversation.item.added') return;
      const reason = runner.inspectSidebandItem(event);
      if (!reason) return;
      watch.forgedOutputs++;
      const action = service.forgedCallOutputAction;
      service.metrics?.forgedCallOutput?.(reason, action);
      const callId = (event.item as { call_id?: unknown }).call_id;
      log.warn({ event: 'call_forged_tool_output', reason, call_id: typeof callId === 'string' ? callId.slice(0, 200) : null, action }, 'call: the device sent a tool output the relay did not produce');
      if (action === 'hangup') session.close(CloseCode.policyViolation, 'forged tool output', 'forged_tool_output');
    },
  };
  // The sideband gets no session.created: an empty update makes upstream echo the session, so a
  // server tool the device dropped before the sideband attached is seen (and put back) at once.
  if (!ctx.toolsLocked) control.sendToUpstream(JSON.stringify({ type: 'session.update', session: { type: 'realtime' } }));
  return watch;
}
