import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { verifySignature } from '../../src/tools/signing';
import { startRelay, type RelayInstance } from '../support/relay-instance';
import { TestClient } from '../support/ws-client';

export const WEBHOOK_SECRET = 'tool-webhook-secret-0123456789abcdef0123';

export interface ReceivedCall {
  path: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  signatureValid: boolean;
}

/**
 * A backend as a tool owner would write it: verifies Relay-Signature over the raw body (and
 * answers 401 when it does not verify), then answers by path: /ok echoes the arguments, /500
 * fails, /timeout never answers in time, /malformed answers 200 with something not JSON.
 */
export class TestWebhook {
  readonly calls: ReceivedCall[] = [];
  private server: Server | null = null;
  baseUrl = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const signatureValid = verifySignature(WEBHOOK_SECRET, raw, req.headers['relay-signature'] as string | undefined, Math.floor(Date.now() / 1000));
        const body = JSON.parse(raw) as Record<string, unknown>;
        const p = req.url ?? '';
        this.calls.push({ path: p, headers: req.headers, body, signatureValid });
        if (!signatureValid) {
          res.writeHead(401).end();
          return;
        }
        if (p === '/500') res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
        else if (p === '/timeout') setTimeout(() => res.writeHead(200).end('{"output":"too late"}'), 10_000).unref();
        else if (p === '/malformed') res.writeHead(200, { 'content-type': 'text/html' }).end('<html>oops</html>');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ output: { confirmed: true, echo: body.arguments } }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

const partyParams = {
  type: 'object',
  properties: { party_size: { type: 'integer', minimum: 1 }, name: { type: 'string' } },
  required: ['party_size', 'name'],
  additionalProperties: false,
};

export function toolsFile(webhookBase: string): Record<string, unknown> {
  const tool = (name: string, webhookPath: string, extra: Record<string, unknown> = {}) => ({
    name,
    description: `Test tool ${name}`,
    parameters: partyParams,
    // Generous: the test machine is loaded, and only slow_tool is meant to time out.
    webhook: { url: `${webhookBase}${webhookPath}`, timeout_ms: webhookPath === '/timeout' ? 400 : 10_000 },
    ...extra,
  });
  return {
    tools: [
      tool('book_table', '/ok'),
      tool('flaky_tool', '/500'),
      tool('slow_tool', '/timeout'),
      tool('garbled_tool', '/malformed'),
      tool('pay_user', '/ok', { approval: 'user', approval_timeout_s: 30 }),
      tool('pay_quick', '/ok', { approval: 'user', approval_timeout_s: 1 }),
      tool('wire_operator', '/ok', { approval: 'operator', approval_timeout_s: 30 }),
      tool('acme_only', '/ok', { tenants: ['acme'] }),
    ],
    mcp: [{ server_label: 'payments', require_approval: 'always', approval: 'user', approval_timeout_s: 30 }],
  };
}

export interface ToolRelay {
  r: RelayInstance;
  webhook: TestWebhook;
  close(): Promise<void>;
}

export async function startToolRelay(env: Record<string, string> = {}): Promise<ToolRelay> {
  const webhook = new TestWebhook();
  await webhook.start();
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-tools-'));
  const file = path.join(dir, 'tools.json');
  writeFileSync(file, JSON.stringify(toolsFile(webhook.baseUrl)));
  const r = await startRelay({ TOOLS_FILE: file, TOOL_WEBHOOK_SECRET: WEBHOOK_SECRET, TOOL_AUDIT_ARGUMENTS: 'full', DRAIN_TIMEOUT_MS: '500', CANCEL_WAIT_MS: '200', ...env });
  return {
    r,
    webhook,
    async close() {
      await r.close();
      await webhook.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function userText(text: string): Record<string, unknown> {
  return { type: 'conversation.item.create', item: { type: 'message', role: 'user', content: [{ type: 'input_text', text }] } };
}

export async function connect(r: RelayInstance, user: string, tenant?: string): Promise<{ c: TestClient; key: string }> {
  const key = await r.createKey(user, ['realtime'], tenant);
  const c = await TestClient.connect(`${r.wsUrl}?model=gpt-realtime`, { headers: { authorization: `Bearer ${key}` } });
  await c.waitFor('session.created');
  // The relay's own session.update (server tools) is answered before anything the test sends.
  await c.waitFor((e) => e.type === 'session.updated' && JSON.stringify(e).includes('book_table'));
  return { c, key };
}

export type Ev = Record<string, unknown>;

/** The n-th (1-based) response.done. */
export function nthDone(c: TestClient, n: number, timeoutMs = 8000): Promise<Ev> {
  return c.waitFor(() => c.events.filter((e) => e.type === 'response.done').length >= n, timeoutMs).then(() => c.events.filter((e) => e.type === 'response.done')[n - 1]!);
}

export function outputItems(done: Ev): Ev[] {
  return ((done.response as Ev).output as Ev[]) ?? [];
}

/** function_call_output items the upstream received from the relay. */
export function outputsSentUpstream(r: RelayInstance): Array<{ call_id: string; output: string }> {
  return r.relay.services.simulator!.stats.receivedClientEvents
    .filter((e) => e.type === 'conversation.item.create')
    .map((e) => (JSON.parse(e.raw) as { item: { type: string; call_id: string; output: string } }).item)
    .filter((i) => i.type === 'function_call_output');
}
