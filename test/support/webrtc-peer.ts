/**
 * A WebRTC client peer in Node (werift), playing the part of a browser or app: an audio track it
 * can speak into (Opus), and the `oai-events` data channel. For simulator and relay tests that
 * need no browser; the Chromium test covers a real browser stack.
 */
import OpusScript from 'opusscript';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCDataChannel, type RTCRtpTransceiver } from 'werift';

export interface ClientPeer {
  offerSdp: string;
  /** Applies the answer and waits for the data channel to open. */
  accept(answerSdp: string): Promise<void>;
  /** Server events received on the data channel, parsed. */
  events: Array<Record<string, unknown>>;
  waitFor(type: string, timeoutMs?: number, count?: number): Promise<Record<string, unknown>>;
  send(event: Record<string, unknown>): void;
  /** Sends `ms` of a loud tone then `silenceMs` of silence as 20 ms Opus frames at real-time pace. */
  speak(ms: number, silenceMs: number): Promise<void>;
  rtpPacketsIn(): number;
  close(): Promise<void>;
}

export async function openClientPeer(): Promise<ClientPeer> {
  // max-bundle: one ICE transport (werift leaves the unbundled one's sockets open on close).
  const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle', iceUseIpv6: false, codecs: { audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48_000, channels: 2 })] } });
  const transceiver: RTCRtpTransceiver = pc.addTransceiver('audio', { direction: 'sendrecv' });
  const dc: RTCDataChannel = pc.createDataChannel('oai-events');
  const events: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let rtpIn = 0;
  pc.onTrack.subscribe((track) => track.onReceiveRtp.subscribe(() => void rtpIn++));
  dc.onMessage.subscribe((m) => {
    events.push(JSON.parse(typeof m === 'string' ? m : m.toString('utf8')) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  if (pc.iceGatheringState !== 'complete') {
    await new Promise<void>((resolve) => {
      const sub = pc.iceGatheringStateChange.subscribe((s) => {
        if (s === 'complete') {
          sub.unSubscribe();
          resolve();
        }
      });
    });
  }
  const offerSdp = pc.localDescription?.sdp ?? '';
  const encoder = new OpusScript(24_000, 1, OpusScript.Application.VOIP);
  let seq = 1;
  let ts = 1000;

  const waitFor: ClientPeer['waitFor'] = async (type, timeoutMs = 10_000, count = 1) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = events.filter((e) => e.type === type);
      if (found.length >= count) return found[count - 1]!;
      if (Date.now() > deadline) throw new Error(`no ${type} (x${count}) on the data channel; got ${events.map((e) => String(e.type)).join(', ')}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  };

  return {
    offerSdp,
    events,
    waitFor,
    async accept(answerSdp) {
      await pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
      if (dc.readyState !== 'open') {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error(`data channel did not open (ice ${pc.iceConnectionState}, connection ${pc.connectionState}, dc ${dc.readyState})`)), 25_000);
          dc.stateChanged.subscribe((s) => {
            if (s === 'open') {
              clearTimeout(t);
              resolve();
            }
          });
        });
      }
    },
    send(event) {
      dc.send(JSON.stringify(event));
    },
    async speak(ms, silenceMs) {
      const frame = 480;
      const total = Math.round((ms + silenceMs) / 20);
      const loud = Math.round(ms / 20);
      let sample = 0;
      const started = Date.now();
      for (let i = 0; i < total; i++) {
        const pcm = Buffer.alloc(frame * 2);
        if (i < loud) for (let j = 0; j < frame; j++) pcm.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * 300 * sample++) / 24_000)), j * 2);
        const opus = Buffer.from(encoder.encode(pcm, frame));
        await transceiver.sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: seq++ & 0xffff, timestamp: (ts += 960) >>> 0 }), opus));
        const wait = started + (i + 1) * 20 - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    },
    rtpPacketsIn: () => rtpIn,
    async close() {
      encoder.delete();
      await pc.close();
    },
  };
}
