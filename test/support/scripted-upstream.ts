import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/**
 * A purpose-built upstream for billing tests, misbehaving on purpose where the simulator is
 * well-behaved: it runs any number of responses at once (as OpenAI does for out-of-band ones),
 * ignores a bare `response.cancel` for out-of-band responses (a bare cancel names the default
 * conversation only), can stall requests, reuse response ids across sessions, and report
 * missing or malformed usage. Every response.done carries `usage(n)` for the n-th response.
 */
export interface ScriptedUpstreamOptions {
  /** How long a response runs before completing on its own (ms). */
  responseMs?: number;
  /** Usage of the n-th response (0-based); undefined leaves `usage` out of response.done. */
  usage?: (n: number) => unknown;
  /** Response ids: a fresh one per response unless this returns one. */
  responseId?: (n: number) => string | undefined;
  /** Never answer response.create (no response.created, no error). */
  stallResponses?: boolean;
  /** Refuse every response.create with an error naming its event_id. */
  refuseResponses?: boolean;
  /** How long stopping a cancelled response takes before its response.done (ms). */
  cancelDelayMs?: number;
}

/** input 500 text tokens ($0.002) + output 125 audio tokens ($0.008) at gpt-realtime prices: $0.010. */
export const TEN_MILLICENT_USAGE = {
  total_tokens: 625,
  input_tokens: 500,
  output_tokens: 125,
  input_token_details: { text_tokens: 500, audio_tokens: 0, image_tokens: 0, cached_tokens: 0 },
  output_token_details: { text_tokens: 0, audio_tokens: 125 },
};
export const TEN_MILLICENT_NANOS = 10_000_000n;

interface Running {
  id: string;
  outOfBand: boolean;
  timer: NodeJS.Timeout;
  n: number;
}

export class ScriptedUpstream {
  readonly received: Array<Record<string, unknown>> = [];
  private readonly wss: WebSocketServer;
  private responses = 0;
  private sessions = 0;
  baseUrl = '';

  constructor(private readonly o: ScriptedUpstreamOptions = {}) {
    this.wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    this.wss.on('connection', (ws) => this.serve(ws));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => (this.wss.address() ? resolve() : this.wss.once('listening', () => resolve())));
    this.baseUrl = `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}/v1`;
  }

  /** Relay settings that point at this upstream (a compatible provider, priced like OpenAI). */
  env(): Record<string, string> {
    return { UPSTREAM_PROVIDER: 'compatible', UPSTREAM_BASE_URL: this.baseUrl, UPSTREAM_API_KEY: 'sk-scripted-upstream-key', REALTIME_API_VERSION: 'ga' };
  }

  get responsesStarted(): number {
    return this.responses;
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private serve(ws: WebSocket): void {
    const running = new Map<string, Running>();
    const sessionId = `sess_scripted_${++this.sessions}`;
    const send = (e: Record<string, unknown>): void => {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event_id: `evt_${Math.random().toString(36).slice(2)}`, ...e }));
    };
    const done = (r: Running, status: string): void => {
      clearTimeout(r.timer);
      running.delete(r.id);
      const usage = this.o.usage ? this.o.usage(r.n) : TEN_MILLICENT_USAGE;
      send({ type: 'response.done', response: { object: 'realtime.response', id: r.id, status, output: [], ...(usage === undefined ? {} : { usage }) } });
    };
    send({ type: 'session.created', session: { id: sessionId, object: 'realtime.session', type: 'realtime', model: 'gpt-realtime' } });
    ws.on('message', (data: Buffer) => {
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      } catch {
        return;
      }
      this.received.push(e);
      const eventId = typeof e.event_id === 'string' ? e.event_id : undefined;
      switch (e.type) {
        case 'session.update':
          send({ type: 'session.updated', session: { id: sessionId, ...(e.session as object) } });
          return;
        case 'conversation.item.create':
        case 'input_audio_buffer.append':
          return;
        case 'response.create': {
          if (this.o.stallResponses) return;
          if (this.o.refuseResponses) {
            send({ type: 'error', error: { type: 'invalid_request_error', code: 'conversation_already_has_active_response', message: 'refused', event_id: eventId ?? null } });
            return;
          }
          const n = this.responses++;
          const id = this.o.responseId?.(n) ?? `resp_${sessionId}_${n}`;
          const outOfBand = (e.response as { conversation?: unknown } | undefined)?.conversation === 'none';
          const r: Running = { id, outOfBand, n, timer: setTimeout(() => done(r, 'completed'), this.o.responseMs ?? 200) };
          running.set(id, r);
          send({ type: 'response.created', response: { object: 'realtime.response', id, status: 'in_progress', output: [], usage: null } });
          return;
        }
        case 'response.cancel': {
          const wanted = typeof e.response_id === 'string' ? e.response_id : undefined;
          // Without an id, only the default conversation's response is cancelled.
          const r = wanted ? running.get(wanted) : [...running.values()].find((x) => !x.outOfBand);
          if (r) {
            clearTimeout(r.timer);
            r.timer = setTimeout(() => done(r, 'cancelled'), this.o.cancelDelayMs ?? 0);
          }
          else send({ type: 'error', error: { type: 'invalid_request_error', code: 'response_cancel_not_active', message: 'no active response', event_id: eventId ?? null } });
          return;
        }
        default:
          send({ type: 'error', error: { type: 'invalid_request_error', code: 'invalid_value', message: `Invalid value: '${String(e.type)}'.`, param: 'type', event_id: eventId ?? null } });
      }
    });
    ws.on('close', () => {
      for (const r of running.values()) clearTimeout(r.timer);
    });
  }
}
