import WebSocket from 'ws';

/** A test client that records every event it receives, with helpers to wait for one. */
export class TestClient {
  readonly events: Array<Record<string, unknown>> = [];
  readonly raw: string[] = [];
  closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      this.raw.push(text);
      try {
        this.events.push(JSON.parse(text) as Record<string, unknown>);
      } catch {
        this.events.push({ type: '__unparseable__', text });
      }
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async connect(url: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<TestClient> {
    const ws = new WebSocket(url, options.protocols ?? [], options);
    const client = new TestClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  send(event: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(event));
  }

  /** Resolves with the first event (from index `from` on) matching the predicate. */
  async waitFor(match: string | ((e: Record<string, unknown>) => boolean), timeoutMs = 5000, from = 0): Promise<Record<string, unknown>> {
    const pred = typeof match === 'string' ? (e: Record<string, unknown>) => e.type === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find(pred);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${typeof match === 'string' ? match : 'event'}; got ${this.events.map((e) => e.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  types(): string[] {
    return this.events.map((e) => String(e.type));
  }

  close(code = 1000): void {
    this.ws.close(code);
  }
}

/** Collects an HTTP error response from a refused upgrade. */
export async function refusedUpgrade(url: string, options: WebSocket.ClientOptions & { protocols?: string[] } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const ws = new WebSocket(url, options.protocols ?? [], options);
  return new Promise((resolve, reject) => {
    ws.once('open', () => reject(new Error('upgrade was accepted')));
    ws.once('error', () => undefined);
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          body = { text };
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
  });
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
