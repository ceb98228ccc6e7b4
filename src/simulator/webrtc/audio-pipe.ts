/**
 * Audio of a simulated WebRTC call: Opus in RTP both ways, PCM16 24 kHz mono inside (what the
 * session engine speaks).
 *
 * Opus codec choice: `opusscript` (libopus compiled to asm.js/wasm, no install step, no download)
 * rather than `@discordjs/opus`, whose install runs node-pre-gyp and fetches a prebuilt binary
 * from the internet (or compiles with a toolchain). Opus itself can run at 24 kHz while the RTP
 * clock stays 48 kHz (RFC 7587), so no resampling is needed.
 */
import OpusScript from 'opusscript';

export const PCM_RATE = 24_000;
/** 20 ms frames, the WebRTC default packetization. */
export const FRAME_MS = 20;
export const FRAME_SAMPLES = (PCM_RATE * FRAME_MS) / 1000;
/** RTP timestamps for Opus always count at 48 kHz. */
export const RTP_TICKS_PER_FRAME = (48_000 * FRAME_MS) / 1000;

/** Frame energy (RMS of int16) above which a frame counts as speech. */
const SPEECH_RMS = 500;
/** Speech shorter than this is a click, not a turn. */
const MIN_SPEECH_MS = 200;
/** Silence that ends a turn (upstream's server_vad default is in this range). */
const END_SILENCE_MS = 500;
/** Bound on queued output audio (a minute), so a stalled peer cannot grow it without limit. */
const MAX_PLAYOUT_BYTES = PCM_RATE * 2 * 60;

export function frameRms(pcm: Buffer): number {
  const n = Math.floor(pcm.length / 2);
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const v = pcm.readInt16LE(i * 2);
    sum += v * v;
  }
  return Math.sqrt(sum / n);
}

export interface TurnEvents {
  /** PCM of a speech frame (and the frames held before speech was confirmed). */
  onSpeechAudio(pcm: Buffer): void;
  /** Enough silence after enough speech: the turn is over. */
  onTurnEnd(): void;
}

/**
 * Energy VAD over decoded input frames. Frames are held until the speech has lasted
 * MIN_SPEECH_MS, so a click never opens a turn; then everything flows until END_SILENCE_MS of
 * silence.
 */
export class TurnDetector {
  private held: Buffer[] = [];
  private speechMs = 0;
  private silenceMs = 0;
  private inTurn = false;

  constructor(private readonly events: TurnEvents) {}

  push(pcm: Buffer): void {
    const ms = (pcm.length / 2 / PCM_RATE) * 1000;
    const speech = frameRms(pcm) >= SPEECH_RMS;
    if (!this.inTurn) {
      if (!speech) {
        this.held = [];
        this.speechMs = 0;
        return;
      }
      this.held.push(pcm);
      this.speechMs += ms;
      if (this.speechMs < MIN_SPEECH_MS) return;
      this.inTurn = true;
      this.silenceMs = 0;
      this.events.onSpeechAudio(Buffer.concat(this.held));
      this.held = [];
      return;
    }
    this.events.onSpeechAudio(pcm);
    this.silenceMs = speech ? 0 : this.silenceMs + ms;
    if (this.silenceMs >= END_SILENCE_MS) {
      this.inTurn = false;
      this.speechMs = 0;
      this.events.onTurnEnd();
    }
  }
}

export class OpusDecoder {
  private readonly opus = new OpusScript(PCM_RATE, 1, OpusScript.Application.VOIP);

  /** One Opus packet → PCM16 (empty on a corrupt packet: a lost frame, not a crash). */
  decode(packet: Buffer): Buffer {
    try {
      return Buffer.from(this.opus.decode(packet));
    } catch {
      return Buffer.alloc(0);
    }
  }

  close(): void {
    this.opus.delete();
  }
}

/**
 * Output audio: PCM the session produces (faster than real time) waits here and leaves as one
 * Opus frame every 20 ms, the pace a real peer plays it at.
 */
export class Playout {
  private readonly opus = new OpusScript(PCM_RATE, 1, OpusScript.Application.AUDIO);
  private queue: Buffer[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | null = null;
  private playing = false;
  private nextAt = 0;

  constructor(
    private readonly sendFrame: (opus: Buffer) => void,
    private readonly onState: (playing: boolean) => void,
  ) {}

  get bufferedBytes(): number {
    return this.queued;
  }

  enqueue(pcm: Buffer): void {
    if (this.queued + pcm.length > MAX_PLAYOUT_BYTES) return;
    this.queue.push(pcm);
    this.queued += pcm.length;
    if (!this.timer) {
      this.nextAt = Date.now();
      this.tick();
    }
  }

  clear(): void {
    this.queue = [];
    this.queued = 0;
  }

  private take(bytes: number): Buffer {
    const out = Buffer.alloc(bytes);
    let off = 0;
    while (off < bytes && this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = Math.min(head.length, bytes - off);
      head.copy(out, off, 0, n);
      off += n;
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    this.queued -= off;
    return out;
  }

  private tick(): void {
    this.timer = null;
    if (this.queued === 0) {
      if (this.playing) {
        this.playing = false;
        this.onState(false);
      }
      return;
    }
    if (!this.playing) {
      this.playing = true;
      this.onState(true);
    }
    const pcm = this.take(FRAME_SAMPLES * 2);
    try {
      this.sendFrame(Buffer.from(this.opus.encode(pcm, FRAME_SAMPLES)));
    } catch {
      /* an encoder failure drops one frame */
    }
    // Scheduled against the wall clock so timer jitter does not stretch the audio.
    this.nextAt += FRAME_MS;
    this.timer = setTimeout(() => this.tick(), Math.max(0, this.nextAt - Date.now()));
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.clear();
    this.opus.delete();
  }
}
