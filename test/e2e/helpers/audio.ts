/** PCM16 helpers for the end-to-end tests: 24 kHz mono little-endian, the Realtime API's pcm16. */

export const SAMPLE_RATE = 24000;

/**
 * Voice-like test audio: a 140 Hz harmonic stack with a syllable-rate envelope. Not speech, but
 * loud and varied enough that any level or VAD check treats it as someone talking.
 */
export function voiceLikePcm16(ms: number): Buffer {
  const samples = Math.round((SAMPLE_RATE * ms) / 1000);
  const out = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    const t = i / SAMPLE_RATE;
    const f0 = 140 + 20 * Math.sin(2 * Math.PI * 3 * t);
    let v = 0;
    for (let h = 1; h <= 6; h++) v += Math.sin(2 * Math.PI * f0 * h * t) / h;
    const envelope = 0.35 + 0.3 * Math.abs(Math.sin(2 * Math.PI * 4 * t));
    out.writeInt16LE(Math.max(-32768, Math.min(32767, Math.round(v * envelope * 9000))), i * 2);
  }
  return out;
}

/** Splits audio into chunks of `chunkMs`, the way a microphone stream arrives. */
export function chunks(pcm: Buffer, chunkMs: number): Buffer[] {
  const size = Math.round((SAMPLE_RATE * chunkMs) / 1000) * 2;
  const out: Buffer[] = [];
  for (let o = 0; o < pcm.length; o += size) out.push(pcm.subarray(o, Math.min(pcm.length, o + size)));
  return out;
}

/** Root mean square of PCM16 samples, normalised to 0..1 full scale. */
export function rms(pcm: Buffer): number {
  const n = Math.floor(pcm.length / 2);
  if (n === 0) return 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const s = pcm.readInt16LE(i * 2) / 32768;
    sum += s * s;
  }
  return Math.sqrt(sum / n);
}
