/**
 * The relay's sideband WebSocket to one upstream WebRTC call (`wss://{base}/realtime?call_id=`,
 * server-side key). The device's media and data channel go straight to the provider; this
 * socket is how the relay sees the call: every server event of the call arrives here, and the
 * relay's own client events (its locked session.update, response.cancel) leave from here.
 *
 * Small on purpose: it opens, sends, closes, and feeds each frame to the same upstream taps a
 * WebSocket session uses (metering, budgets), plus one `onEvent` observer for the call. It reads
 * only a frame's type prefix unless a tap or the observer wants the event.
 */
import type WebSocket from 'ws';
import type { UpstreamMasking } from '../config/config';
import { connectUpstream } from '../upstream/connect';
import type { UpstreamTarget } from '../upstream/provider';
import { isFrameProblem, readFrameType } from './frame-type';
import type { ParsedEvent, TapSession, UpstreamTap } from './relay-session';

export interface CallSidebandOptions {
  target: UpstreamTarget;
  connectTimeoutMs: number;
  masking: UpstreamMasking;
  maxPayload: number;
  taps: Readonly<Record<string, UpstreamTap>>;
  /** Event types the call itself watches (response ids, session.updated); parsed for it. */
  watched: ReadonlySet<string>;
  onEvent: (type: string, event: ParsedEvent) => void;
  /** Every frame's type and size (metrics). */
  onFrame?: (type: string, bytes: number) => void;
  /** What taps get as their session: the call, which has no client socket of its own. */
  control: TapSession;
  /** The socket ended without `close()` being called: the call must re-attach or hang up. */
  onLost: (code: number) => void;
}

/**
 * What a call's plan may do on its sideband: a tap's session, plus a response.create of the
 * relay's own (a tool continuation) that the call matches to its response.created, so the budget
 * hold taken when it was admitted follows that response (as RelaySession.sendResponseCreate does).
 */
export interface CallControl extends TapSession {
  sendResponseCreate(event: string): void;
}

export type SidebandOpen = { ok: true; handshakeMs: number } | { ok: false; status: number | 'timeout' | 'network' };

const OPEN = 1;

export class CallSideband {
  private socket: WebSocket | null = null;
  private closing = false;
  private readonly taps: ReadonlyMap<string, UpstreamTap>;
  frames = 0;
  bytes = 0;

  constructor(private readonly o: CallSidebandOptions) {
    // A Map, not the object: an upstream-named type must never find an inherited member.
    this.taps = new Map(Object.entries(o.taps));
  }

  get open(): boolean {
    return this.socket?.readyState === OPEN;
  }

  async connect(): Promise<SidebandOpen> {
    const { socket, result } = connectUpstream(this.o.target, {
      timeoutMs: this.o.connectTimeoutMs,
      compression: false,
      maxPayload: this.o.maxPayload,
      masking: this.o.masking,
    });
    const r = await result;
    if (!r.ok) return { ok: false, status: r.status };
    if (this.closing) {
      socket.close(1000, 'call ended');
      return { ok: false, status: 'network' };
    }
    this.socket = socket;
    socket.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
    socket.once('close', (code: number) => {
      this.socket = null;
      if (!this.closing) this.o.onLost(code);
    });
    socket.on('error', () => undefined);
    return { ok: true, handshakeMs: r.handshakeMs };
  }

  /** Sends a client event upstream; false when the sideband is not open (the caller decides). */
  send(event: string): boolean {
    if (this.socket?.readyState !== OPEN) return false;
    this.socket.send(event);
    return true;
  }

  close(): void {
    this.closing = true;
    const s = this.socket;
    this.socket = null;
    if (s && s.readyState === OPEN) s.close(1000, 'call ended');
    else s?.terminate();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (isBinary) return;
    this.frames++;
    this.bytes += data.length;
    const read = readFrameType(data);
    if (isFrameProblem(read)) return;
    const { type } = read;
    this.o.onFrame?.(type, data.length);
    const tap = this.taps.get(type);
    const watched = this.o.watched.has(type);
    if (!tap && !watched) return;
    const event = read.parsed ?? parse(data);
    if (!event) return;
    // The call first: it learns a response id before a tap may bill (and end) it.
    if (watched) this.o.onEvent(type, event);
    tap?.(event, this.o.control);
  }
}

function parse(data: Buffer): ParsedEvent | undefined {
  try {
    const v: unknown = JSON.parse(data.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as ParsedEvent) : undefined;
  } catch {
    return undefined;
  }
}
