/**
 * The load generator's WebSocket reader: it walks frames on a raw socket and keeps only each
 * frame's first bytes (where the bench stamp sits), unmasked. `ws`'s own receiver would copy,
 * unmask and UTF-8-check every 6.5 KB audio frame; on one core that made the load generator,
 * not the relay, the first to run out of CPU. Nothing here is used by the relay itself.
 */

export interface FrameHead {
  opcode: number;
  fin: boolean;
  /** The whole payload's length. */
  length: number;
  /**
   * The first min(length, keep) payload bytes, unmasked. Reused for the next frame: read it
   * before returning from the callback.
   */
  head: Buffer;
}

export class FramePrefixReader {
  private readonly header = Buffer.alloc(14);
  private headerHave = 0;
  private headerNeed = 2;
  private inPayload = false;
  private readonly mask = Buffer.alloc(4);
  private masked = false;
  private opcode = 0;
  private fin = false;
  private length = 0;
  private payloadSeen = 0;
  private readonly head: Buffer;

  constructor(
    private readonly keep: number,
    private readonly onFrame: (frame: FrameHead) => void,
  ) {
    this.head = Buffer.alloc(keep);
  }

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (!this.inPayload) {
        const take = Math.min(this.headerNeed - this.headerHave, chunk.length - i);
        chunk.copy(this.header, this.headerHave, i, i + take);
        this.headerHave += take;
        i += take;
        if (this.headerHave < this.headerNeed) return;
        if (this.headerNeed === 2) {
          const len7 = this.header[1] & 0x7f;
          const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.header[1] & 0x80 ? 4 : 0);
          if (need > 2) {
            this.headerNeed = need;
            continue;
          }
        }
        this.startPayload();
        if (this.length === 0) this.endFrame();
        continue;
      }
      const take = Math.min(this.length - this.payloadSeen, chunk.length - i);
      if (this.payloadSeen < this.keep) {
        const n = Math.min(this.keep - this.payloadSeen, take);
        chunk.copy(this.head, this.payloadSeen, i, i + n);
      }
      this.payloadSeen += take;
      i += take;
      if (this.payloadSeen === this.length) this.endFrame();
    }
  }

  private startPayload(): void {
    const h = this.header;
    this.fin = (h[0] & 0x80) !== 0;
    this.opcode = h[0] & 0x0f;
    this.masked = (h[1] & 0x80) !== 0;
    const len7 = h[1] & 0x7f;
    let o = 2;
    if (len7 === 126) {
      this.length = h.readUInt16BE(2);
      o = 4;
    } else if (len7 === 127) {
      this.length = Number(h.readBigUInt64BE(2));
      o = 10;
    } else {
      this.length = len7;
    }
    if (this.masked) h.copy(this.mask, 0, o, o + 4);
    this.payloadSeen = 0;
    this.inPayload = true;
  }

  private endFrame(): void {
    const n = Math.min(this.length, this.keep);
    if (this.masked) for (let j = 0; j < n; j++) this.head[j] ^= this.mask[j & 3];
    this.inPayload = false;
    this.headerHave = 0;
    this.headerNeed = 2;
    this.onFrame({ opcode: this.opcode, fin: this.fin, length: this.length, head: this.head.subarray(0, n) });
  }
}
