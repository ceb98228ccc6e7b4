import WebSocket from 'ws';
import type { RealtimeUsage } from '../../src/simulator';

export interface ServerEvent {
  type: string;
  event_id: string;
  [key: string]: unknown;
}

export interface ErrorEvent extends ServerEvent {
  error: { type: string; code: string | null; message: string; param: string | null; event_id: string | null };
}

export interface ResponseObject {
  id: string;
  object: string;
  status: string;
  status_details: unknown;
  output: Array<{ id: string; type: string; status: string; name?: string; call_id?: string; arguments?: string; content?: Array<{ type: string; transcript?: string; text?: string }> }>;
  usage: RealtimeUsage | null;
  [key: string]: unknown;
}

export interface ResponseEvent extends ServerEvent {
  response: ResponseObject;
}

export interface SessionEvent extends ServerEvent {
  session: Record<string, unknown> & { id: string; model: string };
}

export interface DeltaEvent extends ServerEvent {
  response_id: string;
  item_id: string;
  delta: string;
}

export interface ConnectOptions {
  headers?: Record<string, string>;
  protocols?: string[];
}

/** A ws client that records every server event and lets tests wait for them in order. */
export class TestClient {
  readonly events: ServerEvent[] = [];
  private cursor = 0;
  private wake: (() => void) | null = null;
  readonly closed: Promise<{ code: number; reason: string }>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('simulator sent a binary frame');
      this.events.push(JSON.parse(data.toString()) as ServerEvent);
      this.wake?.();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    void this.closed.then(() => this.wake?.());
  }

  static connect(url: string, opts: ConnectOptions = {}): Promise<TestClient> {
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {} });
    const client = new TestClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected HTTP ${res.statusCode}`)));
    });
  }

  send(event: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(event));
  }

  /** Waits for the next event of this type after the last one waited for, and moves past it. */
  async waitFor<T extends ServerEvent = ServerEvent>(type: string | ((e: ServerEvent) => boolean), timeoutMs = 3000): Promise<T> {
    const match = typeof type === 'string' ? (e: ServerEvent) => e.type === type : type;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = this.cursor; i < this.events.length; i++) {
        if (match(this.events[i]!)) {
          this.cursor = i + 1;
          return this.events[i] as T;
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(`timed out waiting for ${typeof type === 'string' ? type : 'event'}; got ${this.events.slice(this.cursor).map((e) => e.type).join(', ')}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Events from the cursor up to and including the next event of `type`. */
  async until(type: string, timeoutMs = 3000): Promise<ServerEvent[]> {
    const from = this.cursor;
    await this.waitFor(type, timeoutMs);
    return this.events.slice(from, this.cursor);
  }

  /** Resolves after `ms` with the events that arrived meanwhile. */
  async quiet(ms: number): Promise<ServerEvent[]> {
    const from = this.events.length;
    await new Promise((r) => setTimeout(r, ms));
    return this.events.slice(from);
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000, 'bye');
    await this.closed;
  }
}

/** Opens a handshake expected to fail; returns the HTTP status and JSON body. */
export function failedHandshake(url: string, opts: ConnectOptions = {}): Promise<{ status: number; body: { error: { message: string; type: string; code: string | null } } }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, opts.protocols ?? [], { headers: opts.headers ?? {} });
    ws.once('open', () => {
      ws.close();
      reject(new Error('handshake unexpectedly succeeded'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        ws.terminate();
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error: { message: string; type: string; code: string | null } } });
      });
    });
    ws.once('error', () => undefined);
  });
}

export function wsUrl(baseUrl: string, query: string, path = '/realtime'): string {
  return `${baseUrl.replace(/^http/, 'ws')}${path}?${query}`;
}

/** Root of the simulator's URL (without /v1), for Azure paths. */
export function wsRoot(baseUrl: string): string {
  return baseUrl.replace(/^http/, 'ws').replace(/\/v1$/, '');
}

/** `ms` of silent pcm16 at 24 kHz, base64. */
export function pcm16(ms: number): string {
  return Buffer.alloc(ms * 48).toString('base64');
}

export function b64bytes(s: string): number {
  return Buffer.from(s, 'base64').length;
}

export function checkUsage(u: RealtimeUsage): void {
  const i = u.input_token_details;
  const c = i.cached_tokens_details;
  expect(u.input_tokens).toBe(i.text_tokens + i.audio_tokens + i.image_tokens);
  expect(u.output_tokens).toBe(u.output_token_details.text_tokens + u.output_token_details.audio_tokens);
  expect(u.total_tokens).toBe(u.input_tokens + u.output_tokens);
  expect(i.cached_tokens).toBe(c.text_tokens + c.audio_tokens + c.image_tokens);
  expect(c.text_tokens).toBeLessThanOrEqual(i.text_tokens);
  expect(c.audio_tokens).toBeLessThanOrEqual(i.audio_tokens);
  expect(c.image_tokens).toBeLessThanOrEqual(i.image_tokens);
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Polls until `cond` holds (server-side bookkeeping can trail the client's view by a tick). */
export async function eventually(cond: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
