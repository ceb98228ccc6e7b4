import WebSocket from 'ws';
import type { UpstreamMasking } from '../config/config';
import { mapHandshakeFailure, type HandshakeFailure } from '../relay/close-codes';
import type { UpstreamTarget } from './provider';

export interface ConnectOptions {
  timeoutMs: number;
  compression: boolean;
  maxPayload: number;
  masking: UpstreamMasking;
}

/** A zero mask makes `ws` write the caller's buffer as is: no masked copy of each frame. */
const zeroMask = (mask: Buffer): void => {
  mask.fill(0);
};

/** `ws`'s `generateMask` for an upstream URL: zero masks where the setting asks, else ws's random ones. */
export function upstreamMaskGenerator(url: string, masking: UpstreamMasking): ((mask: Buffer) => void) | undefined {
  const zero = masking === 'none' || (masking === 'auto' && url.startsWith('wss:'));
  return zero ? zeroMask : undefined;
}

export type ConnectResult =
  | { ok: true; socket: WebSocket; handshakeMs: number }
  | {
      ok: false;
      failure: HandshakeFailure;
      status: number | 'timeout' | 'network';
      handshakeMs: number;
      /** For the operator's log: what failed (socket error, HTTP status and error code) and where; never a header. */
      detail: { host: string; cause: string };
    };

const MAX_ERROR_BODY = 16 * 1024;

/**
 * Opens the upstream WebSocket and resolves once it is open or has definitely failed.
 * A refused handshake's JSON body is read (bounded) for its error code; it never carries our key.
 */
export function connectUpstream(target: UpstreamTarget, o: ConnectOptions): { socket: WebSocket; result: Promise<ConnectResult> } {
  const started = performance.now();
  const host = new URL(target.url).host;
  const socket = new WebSocket(target.url, {
    headers: target.headers,
    perMessageDeflate: o.compression,
    handshakeTimeout: o.timeoutMs,
    maxPayload: o.maxPayload,
    generateMask: upstreamMaskGenerator(target.url, o.masking),
  });
  const result = new Promise<ConnectResult>((resolve) => {
    let settled = false;
    const settle = (r: ConnectResult): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const elapsed = (): number => performance.now() - started;
    socket.once('open', () => settle({ ok: true, socket, handshakeMs: elapsed() }));
    socket.once('unexpected-response', (_req, res) => {
      const status = res.statusCode ?? 502;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        if (size < MAX_ERROR_BODY) chunks.push(c);
        size += c.length;
      });
      const finish = (): void => {
        let code: string | undefined;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: unknown } };
          if (typeof body.error?.code === 'string') code = body.error.code;
        } catch {
          /* a non-JSON error body: the status alone decides */
        }
        const cause = `HTTP ${status}${code ? ` (${code})` : ''}`;
        settle({ ok: false, status, failure: mapHandshakeFailure(status, code), handshakeMs: elapsed(), detail: { host, cause } });
        socket.terminate();
      };
      res.once('end', finish);
      res.once('error', finish);
      res.once('aborted', finish);
    });
    socket.on('error', (err: Error) => {
      const status = /handshake has timed out/i.test(err.message) ? 'timeout' : 'network';
      settle({ ok: false, status, failure: mapHandshakeFailure(status), handshakeMs: elapsed(), detail: { host, cause: err.message } });
    });
    socket.once('close', () =>
      settle({ ok: false, status: 'network', failure: mapHandshakeFailure('network'), handshakeMs: elapsed(), detail: { host, cause: 'connection closed before the handshake completed' } }),
    );
  });
  return { socket, result };
}
