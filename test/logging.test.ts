import { Writable } from 'node:stream';
import { createLogger } from '../src/logging';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  return { stream, lines };
}

describe('createLogger', () => {
  it('redacts credentials wherever a request or upstream target is logged', () => {
    const { stream, lines } = capture();
    const log = createLogger('info', stream);
    log.info({
      req: { headers: { authorization: 'Bearer sk-live-secret', 'sec-websocket-protocol': 'realtime, openai-insecure-api-key.ek_abc', 'api-key': 'azure-secret', cookie: 's=1' } },
      target: { url: 'wss://api.openai.com/v1/realtime', headers: { Authorization: 'Bearer sk-live-secret', 'api-key': 'azure-secret' } },
      upstream: { apiKey: 'sk-live-secret' },
    }, 'session open');
    const out = lines.join('');
    expect(out).toContain('session open');
    expect(out).toContain('wss://api.openai.com/v1/realtime');
    for (const secret of ['sk-live-secret', 'ek_abc', 'azure-secret', 's=1']) expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
  });
});
