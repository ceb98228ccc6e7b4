/**
 * One simulated WebRTC call: a real peer connection (werift) whose audio track and `oai-events`
 * data channel, plus any sideband WebSockets (`GET /v1/realtime?call_id=`), drive one
 * SimulatedSession, the same engine the WebSocket API uses.
 *
 * WebRTC stack choice: `werift` (pure TypeScript ICE/DTLS/SCTP/SRTP, no native code and no
 * install-time download, maintained, used in production SFUs). 0.24.x is the newest line whose
 * engines field accepts Node 20; 0.25 asks for Node 22. The alternatives either compile native
 * code (`wrtc`/`@roamhq/wrtc`, which also download prebuilt binaries) or are unmaintained.
 *
 * The call is the session's socket (SessionSocket): what the session sends goes to the data
 * channel and to every attached sideband, except output audio, which leaves as Opus on the RTP
 * track, as upstream does on WebRTC (no audio deltas on the data channel).
 */
import { EventEmitter } from 'node:events';
import { RTCPeerConnection, RTCRtpCodecParameters, RtpHeader, RtpPacket, type RTCDataChannel, type RTCRtpTransceiver } from 'werift';
import type { RawData, WebSocket } from 'ws';
import { randomId } from '../ids';
import type { SessionSocket } from '../session';
import { OpusDecoder, Playout, RTP_TICKS_PER_FRAME, TurnDetector } from './audio-pipe';

const OPEN = 1;
const CLOSED = 3;
/** Server events waiting for the data channel to open (session.created is sent at once). */
const MAX_QUEUED_EVENTS = 1000;
const AUDIO_DELTA_TYPES = new Set(['response.output_audio.delta', 'response.audio.delta']);

export interface CallStats {
  rtpPacketsIn: number;
  rtpPacketsOut: number;
  speechTurns: number;
  dataChannelMessagesIn: number;
  sidebandMessagesIn: number;
}

/** The `oai-events` data channel as upstream has it: the client opens it, we answer on it. */
export class SimulatedCall extends EventEmitter implements SessionSocket {
  readonly callId = randomId('rtc', 24);
  readonly stats: CallStats = { rtpPacketsIn: 0, rtpPacketsOut: 0, speechTurns: 0, dataChannelMessagesIn: 0, sidebandMessagesIn: 0 };
  readyState = OPEN;
  private readonly pc: RTCPeerConnection;
  private dataChannel: RTCDataChannel | null = null;
  private readonly queued: string[] = [];
  private readonly sidebands = new Set<WebSocket>();
  private readonly decoder = new OpusDecoder();
  private readonly playout: Playout;
  private readonly turns: TurnDetector;
  private audioTransceiver: RTCRtpTransceiver | null = null;
  private seq = Math.floor(Math.random() * 0xffff);
  private rtpTimestamp = Math.floor(Math.random() * 0xffffffff);

  constructor() {
    super();
    this.pc = new RTCPeerConnection({
      // One transport: werift leaves an unbundled transport's sockets open after close().
      bundlePolicy: 'max-bundle',
      codecs: { audio: [new RTCRtpCodecParameters({ mimeType: 'audio/opus', clockRate: 48_000, channels: 2 })] },
    });
    this.playout = new Playout(
      (opus) => this.sendOpus(opus),
      (playing) => this.broadcast(JSON.stringify({ type: playing ? 'output_audio_buffer.started' : 'output_audio_buffer.stopped', event_id: randomId('event'), response_id: null })),
    );
    this.turns = new TurnDetector({
      onSpeechAudio: (pcm) => this.inject({ type: 'input_audio_buffer.append', audio: pcm.toString('base64') }),
      onTurnEnd: () => {
        this.stats.speechTurns++;
        this.inject({ type: 'input_audio_buffer.commit' });
      },
    });
    this.pc.onDataChannel.subscribe((dc) => this.onDataChannel(dc));
    this.pc.onTrack.subscribe((track) => {
      if (track.kind !== 'audio') return;
      track.onReceiveRtp.subscribe((rtp) => {
        this.stats.rtpPacketsIn++;
        const pcm = this.decoder.decode(rtp.payload);
        if (pcm.length > 0) this.turns.push(pcm);
      });
    });
    this.pc.connectionStateChange.subscribe((state) => {
      if (state === 'failed' || state === 'closed') this.end(1000, `peer connection ${state}`);
    });
  }

  get bufferedAmount(): number {
    return this.playout.bufferedBytes;
  }

  get sidebandCount(): number {
    return this.sidebands.size;
  }

  /** Answers the client's offer; resolves with the answer SDP, ICE candidates included (no trickle). */
  async answer(offerSdp: string): Promise<string> {
    await this.pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    this.audioTransceiver = this.pc.getTransceivers().find((t) => t.kind === 'audio') ?? null;
    if (!this.audioTransceiver) throw new Error('the offer has no audio section');
    this.audioTransceiver.setDirection('sendrecv');
    // Answer `a=setup:passive`: the offerer starts DTLS once it has our answer, when we are
    // certainly listening. As the active side werift's first ClientHello can reach an offerer
    // that is not ready yet and the handshake then stalls (seen werift-to-werift).
    for (const t of this.pc.dtlsTransports) t.role = 'server';
    const answer = await this.pc.createAnswer();
    await this.pc.setLocalDescription(answer);
    if (this.pc.iceGatheringState !== 'complete') {
      await new Promise<void>((resolve) => {
        const sub = this.pc.iceGatheringStateChange.subscribe((s) => {
          if (s !== 'complete') return;
          sub.unSubscribe();
          resolve();
        });
      });
    }
    const sdp = this.pc.localDescription?.sdp;
    if (!sdp) throw new Error('no local description');
    return sdp;
  }

  /** A sideband WebSocket joins: it sees server events from now on and may send client events. */
  attachSideband(ws: WebSocket): void {
    if (this.readyState !== OPEN) {
      ws.close(1000, 'call ended');
      return;
    }
    this.sidebands.add(ws);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      this.stats.sidebandMessagesIn++;
      this.emit('message', data, isBinary);
    });
    ws.on('close', () => this.sidebands.delete(ws));
    ws.on('error', () => this.sidebands.delete(ws));
  }

  /** Drops every sideband without a close frame (tests: a network failure). */
  dropSidebands(): void {
    for (const ws of this.sidebands) ws.terminate();
    this.sidebands.clear();
  }

  // SessionSocket ------------------------------------------------------------------------------

  send(data: string): void {
    if (this.readyState !== OPEN) return;
    const type = /^\{"type":"([^"]+)"/.exec(data)?.[1];
    if (type !== undefined && AUDIO_DELTA_TYPES.has(type)) {
      const delta = (JSON.parse(data) as { delta?: unknown }).delta;
      if (typeof delta === 'string') this.playout.enqueue(Buffer.from(delta, 'base64'));
      return;
    }
    this.broadcast(data);
  }

  close(code: number, reason: string): void {
    this.end(code, reason);
  }

  terminate(): void {
    this.end(1006, '');
  }

  /** Hang-up: ends the call for everyone. */
  hangup(): void {
    this.end(1000, 'hangup');
  }

  // ---------------------------------------------------------------------------------------------

  private broadcast(data: string): void {
    const dc = this.dataChannel;
    if (dc && dc.readyState === 'open') dc.send(data);
    else if (this.queued.length < MAX_QUEUED_EVENTS) this.queued.push(data);
    for (const ws of this.sidebands) if (ws.readyState === OPEN) ws.send(data);
  }

  /** Client events the call itself derives from the audio (server VAD), fed to the session. */
  private inject(event: Record<string, unknown>): void {
    this.emit('message', Buffer.from(JSON.stringify(event)), false);
  }

  private onDataChannel(dc: RTCDataChannel): void {
    if (dc.label !== 'oai-events') return;
    this.dataChannel = dc;
    const flush = (): void => {
      for (const m of this.queued.splice(0)) dc.send(m);
    };
    if (dc.readyState === 'open') flush();
    dc.stateChanged.subscribe((s) => {
      if (s === 'open') flush();
    });
    dc.onMessage.subscribe((m) => {
      this.stats.dataChannelMessagesIn++;
      this.emit('message', Buffer.isBuffer(m) ? m : Buffer.from(m), Buffer.isBuffer(m));
    });
  }

  private sendOpus(opus: Buffer): void {
    const sender = this.audioTransceiver?.sender;
    if (!sender) return;
    this.seq = (this.seq + 1) & 0xffff;
    this.rtpTimestamp = (this.rtpTimestamp + RTP_TICKS_PER_FRAME) >>> 0;
    this.stats.rtpPacketsOut++;
    void sender.sendRtp(new RtpPacket(new RtpHeader({ sequenceNumber: this.seq, timestamp: this.rtpTimestamp, marker: false }), opus)).catch(() => undefined);
  }

  private end(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.playout.close();
    this.decoder.close();
    for (const ws of this.sidebands) ws.close(1000, 'call ended');
    this.sidebands.clear();
    void this.pc.close().catch(() => undefined);
    this.emit('close', code, Buffer.from(reason));
  }
}
