import { runInThisContext } from 'node:vm';
import type { RelayInstance, RelayResponse } from '../support/relay-instance';
import { delay, TestClient } from '../support/ws-client';

/**
 * Settings for relays that the reliability suites hammer: the per-user connection limits are
 * lifted (every fuzz run reconnects as the same user) and keepalive pings are off so that
 * timings are the relay's own.
 */
export const HAMMER_ENV: Readonly<Record<string, string>> = {
  MAX_SESSIONS_PER_USER: '100000',
  MAX_SESSIONS_PER_KEY: '100000',
  CONNECTIONS_PER_MINUTE_PER_USER: '100000',
  MINT_RATE_LIMIT_PER_MINUTE: '100000',
  PING_INTERVAL_MS: '0',
};

/**
 * Collects unhandled rejections and uncaught exceptions while installed. A relay bug that
 * throws in a socket callback would kill a production process; here it must fail the test.
 *
 * The listeners go on the real process: jest gives each test file a copy of `process` whose
 * `on` registers on the copy, where Node never emits these events. (jest-circus also fails
 * the running test on them; this makes the property's own assertion say so, with the stack.)
 */
export function crashWatch(): { install(): void; uninstall(): void; assertNone(): void } {
  const realProcess = runInThisContext('process') as NodeJS.Process;
  const seen: unknown[] = [];
  const onRejection = (reason: unknown): void => {
    seen.push(reason);
  };
  const onException = (err: unknown): void => {
    seen.push(err);
  };
  return {
    install() {
      realProcess.on('unhandledRejection', onRejection);
      realProcess.on('uncaughtException', onException);
    },
    uninstall() {
      realProcess.off('unhandledRejection', onRejection);
      realProcess.off('uncaughtException', onException);
    },
    assertNone() {
      const list = seen.splice(0);
      if (list.length > 0) {
        const text = list.map((e) => (e instanceof Error ? e.stack ?? e.message : String(e))).join('\n---\n');
        throw new Error(`the relay process saw ${list.length} unhandled error(s):\n${text}`);
      }
    },
  };
}

/** Connects with a bearer credential and waits for the upstream session to be up. */
export async function connect(r: RelayInstance, credential: string, query = ''): Promise<TestClient> {
  const c = await TestClient.connect(`${r.wsUrl}${query}`, { headers: { authorization: `Bearer ${credential}` } });
  await c.waitFor('session.created', 5000);
  return c;
}

/** One full turn: response.create → response.done (text only, so it is quick). */
export async function converse(c: TestClient, timeoutMs = 8000): Promise<Record<string, unknown>> {
  const from = c.events.length;
  c.send({ type: 'response.create', response: { output_modalities: ['text'] } });
  return c.waitFor('response.done', timeoutMs, from);
}

/** Whether a socket is still open (ws readyState OPEN). */
export function isOpen(c: TestClient): boolean {
  return c.ws.readyState === 1;
}

/** Asserts the OpenAI error shape on an HTTP answer: `{"error": {message, type, code}}` with string fields. */
export function expectOpenAiError(res: RelayResponse<unknown>, context: string): void {
  const body = res.body as { error?: { message?: unknown; type?: unknown; code?: unknown } } | undefined;
  const ok =
    res.status >= 400 &&
    res.status < 500 &&
    typeof body === 'object' &&
    body !== null &&
    typeof body.error === 'object' &&
    body.error !== null &&
    typeof body.error.message === 'string' &&
    typeof body.error.type === 'string' &&
    typeof body.error.code === 'string';
  if (!ok) throw new Error(`${context}: expected a 4xx OpenAI-shaped error, got ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
}

/** Polls until `ok(value)` or the deadline; returns the last value read. */
export async function until<T>(read: () => Promise<T> | T, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await delay(20);
    v = await read();
  }
  return v;
}
