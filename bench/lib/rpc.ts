/**
 * Request/response over a child process's IPC channel. The bench runs the relay and the load
 * generator in their own processes (one core each), and the orchestrator drives both from here.
 */
import type { ChildProcess } from 'node:child_process';

export interface CallShape {
  args: unknown;
  result: unknown;
}

export type Api = Record<string, CallShape>;

interface Request {
  id: number;
  cmd: string;
  args: unknown;
}

type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

function isReply(m: unknown): m is Reply {
  return typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'number' && typeof (m as { ok?: unknown }).ok === 'boolean';
}

function isRequest(m: unknown): m is Request {
  return typeof m === 'object' && m !== null && typeof (m as { id?: unknown }).id === 'number' && typeof (m as { cmd?: unknown }).cmd === 'string';
}

export class Peer<A extends Api> {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; cmd: string }>();
  private exited: string | null = null;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: unknown) => {
      if (!isReply(m)) return;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${name}.${w.cmd}: ${m.error}`));
    });
    child.on('exit', (code, signal) => {
      this.exited = `exited (code ${code}, signal ${signal})`;
      for (const w of this.waiting.values()) w.reject(new Error(`${name}.${w.cmd}: process ${this.exited}`));
      this.waiting.clear();
    });
  }

  call<K extends keyof A & string>(cmd: K, args: A[K]['args'], timeoutMs = 600_000): Promise<A[K]['result']> {
    if (this.exited) return Promise.reject(new Error(`${this.name}.${cmd}: process ${this.exited}`));
    const id = this.nextId++;
    return new Promise<A[K]['result']>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}.${cmd}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        cmd,
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as A[K]['result']);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      const req: Request = { id, cmd, args };
      this.child.send(req);
    });
  }

  /** Resolves once the process has exited (at once if it already has). */
  waitExit(timeoutMs: number): Promise<void> {
    if (this.exited || this.child.exitCode !== null || this.child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.child.kill('SIGKILL');
        resolve();
      }, timeoutMs);
      this.child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}

export type Handlers<A extends Api> = { [K in keyof A]: (args: A[K]['args']) => Promise<A[K]['result']> };

/** The child side: answers each request with its handler's result. */
export function serve<A extends Api>(handlers: Handlers<A>): void {
  const send = (r: Reply): void => {
    if (process.send) process.send(r);
  };
  process.on('message', (m: unknown) => {
    if (!isRequest(m)) return;
    const h = (handlers as Record<string, ((args: unknown) => Promise<unknown>) | undefined>)[m.cmd];
    if (!h) {
      send({ id: m.id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    h(m.args).then(
      (result) => send({ id: m.id, ok: true, result }),
      (err: unknown) => send({ id: m.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    );
  });
  // The orchestrator going away must not leave a relay or 2,000 sockets behind.
  process.on('disconnect', () => process.exit(0));
}
