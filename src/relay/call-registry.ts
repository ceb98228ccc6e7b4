import type { RelayCall } from '../session/relay-call';

/**
 * The WebRTC calls this process holds the sideband of: for hang-up by id, drain, and the
 * active-calls gauge. WebSocket sessions live in SessionRegistry; both count against the same
 * concurrent-session limit (the limiter's lease, not this registry, enforces that).
 */
export class CallRegistry {
  private readonly calls = new Map<string, RelayCall>();

  get size(): number {
    return this.calls.size;
  }

  add(call: RelayCall): void {
    this.calls.set(call.callId, call);
  }

  get(callId: string): RelayCall | undefined {
    return this.calls.get(callId);
  }

  delete(call: RelayCall): void {
    if (this.calls.get(call.callId) === call) this.calls.delete(call.callId);
  }

  /** Lets calls run for up to `timeoutMs`, then ends the rest (cancel by id, settle, hang up). */
  async drain(timeoutMs: number): Promise<{ endedByRelay: number }> {
    const deadline = Date.now() + timeoutMs;
    while (this.calls.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const rest = [...this.calls.values()];
    await Promise.all(rest.map((c) => c.end('drained')));
    return { endedByRelay: rest.length };
  }
}
