import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { UpstreamMasking } from '../../src/config/config';
import { connectUpstream } from '../../src/upstream/connect';
import { selfSignedCert, type SelfSignedCert } from '../e2e/helpers/tls';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface WireFrame {
  masked: boolean;
  mask: Buffer;
  /** The payload exactly as it crossed the wire (still masked). */
  wirePayload: Buffer;
}

/**
 * A WebSocket server written against the raw socket, because `ws` unmasks before anyone can
 * look: it answers the handshake and hands back the first data frame's bytes as sent.
 */
function rawUpstream(secure: SelfSignedCert | null): Promise<{ url: string; firstFrame: Promise<WireFrame>; close(): void }> {
  let deliver: (f: WireFrame) => void = () => undefined;
  const firstFrame = new Promise<WireFrame>((resolve) => {
    deliver = resolve;
  });
  const onSocket = (socket: net.Socket): void => {
    let buf = Buffer.alloc(0);
    let upgraded = false;
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /sec-websocket-key: *(\S+)/i.exec(buf.subarray(0, end).toString('latin1'))?.[1] ?? '';
        const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
        socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        upgraded = true;
        buf = buf.subarray(end + 4);
      }
      if (buf.length < 2) return;
      const masked = (buf[1] & 0x80) !== 0;
      let len = buf[1] & 0x7f;
      let offset = 2;
      if (len === 126) {
        len = buf.readUInt16BE(2);
        offset = 4;
      }
      const maskLen = masked ? 4 : 0;
      if (buf.length < offset + maskLen + len) return;
      deliver({ masked, mask: buf.subarray(offset, offset + maskLen), wirePayload: buf.subarray(offset + maskLen, offset + maskLen + len) });
    });
    socket.on('error', () => undefined);
  };
  const server = secure
    ? tls.createServer({ cert: readFileSync(secure.certFile), key: readFileSync(secure.keyFile) }, onSocket)
    : net.createServer(onSocket);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({ url: `${secure ? 'wss' : 'ws'}://127.0.0.1:${port}/v1/realtime?model=m`, firstFrame, close: () => server.close() });
    });
  });
}

const EVENT = JSON.stringify({ type: 'input_audio_buffer.append', audio: 'A'.repeat(400) });

async function firstFrameWith(masking: UpstreamMasking, secure: SelfSignedCert | null): Promise<WireFrame> {
  const upstream = await rawUpstream(secure);
  const { socket, result } = connectUpstream({ url: upstream.url, headers: {} }, { timeoutMs: 5000, compression: false, maxPayload: 1 << 20, masking });
  try {
    const r = await result;
    if (!r.ok) throw new Error(`handshake failed: ${r.status}`);
    socket.send(Buffer.from(EVENT), { binary: false });
    return await upstream.firstFrame;
  } finally {
    socket.terminate();
    upstream.close();
  }
}

function unmask(f: WireFrame): string {
  const out = Buffer.from(f.wirePayload);
  for (let i = 0; i < out.length; i++) out[i] ^= f.mask[i & 3];
  return out.toString('utf8');
}

describe('masking of frames sent to the upstream', () => {
  let cert: SelfSignedCert;
  beforeAll(() => {
    cert = selfSignedCert();
    // The throwaway certificate is in no trust store: `ws` dials through tls.connect, so the
    // test hands it the certificate as the one trusted CA there, leaving the relay's code as is.
    const realConnect = tls.connect.bind(tls) as (o: tls.ConnectionOptions) => tls.TLSSocket;
    jest.spyOn(tls, 'connect').mockImplementation(((o: tls.ConnectionOptions) => realConnect({ ...o, ca: cert.certPem })) as typeof tls.connect);
  });
  afterAll(() => {
    jest.restoreAllMocks();
    cert.cleanup();
  });

  it('auto over ws:// masks with a random key, as RFC 6455 asks on a plain connection', async () => {
    const f = await firstFrameWith('auto', null);
    expect(f.masked).toBe(true);
    expect(f.mask.equals(Buffer.alloc(4))).toBe(false);
    expect(f.wirePayload.toString('utf8')).not.toBe(EVENT);
    expect(unmask(f)).toBe(EVENT);
  });

  it('auto over wss:// sends a zero mask: the payload crosses (inside TLS) as the client sent it', async () => {
    const f = await firstFrameWith('auto', cert);
    expect(f.masked).toBe(true);
    expect([...f.mask]).toEqual([0, 0, 0, 0]);
    expect(f.wirePayload.toString('utf8')).toBe(EVENT);
  });

  it('random masks even over wss://; none zero-masks even over ws://', async () => {
    const random = await firstFrameWith('random', cert);
    expect(random.mask.equals(Buffer.alloc(4))).toBe(false);
    expect(unmask(random)).toBe(EVENT);
    const none = await firstFrameWith('none', null);
    expect([...none.mask]).toEqual([0, 0, 0, 0]);
    expect(none.wirePayload.toString('utf8')).toBe(EVENT);
  });

  it('two random-masked frames use different keys', async () => {
    const a = await firstFrameWith('random', null);
    const b = await firstFrameWith('random', null);
    expect(a.mask.equals(b.mask)).toBe(false);
  });
});
