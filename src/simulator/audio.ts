/** Output audio generation. Formats follow the API: pcm16 24 kHz mono LE, or G.711 at 8 kHz. */
export type AudioFormat = 'pcm16' | 'g711_ulaw' | 'g711_alaw';

export function sampleRate(format: AudioFormat): number {
  return format === 'pcm16' ? 24000 : 8000;
}

export function bytesPerMs(format: AudioFormat): number {
  return format === 'pcm16' ? 48 : 8;
}

const TONE_HZ = 440;
// Quiet on purpose: people run the simulator in dev with speakers on.
const AMPLITUDE = 0.1 * 32767;

/**
 * One chunk of a sine tone; `startSample` carries the phase across chunks so the concatenated
 * stream has no clicks (useful when someone actually plays it).
 */
export function toneChunk(format: AudioFormat, ms: number, startSample: number): { data: Buffer; samples: number } {
  const rate = sampleRate(format);
  const samples = Math.round((rate * ms) / 1000);
  const data = Buffer.alloc(format === 'pcm16' ? samples * 2 : samples);
  for (let i = 0; i < samples; i++) {
    const v = Math.round(AMPLITUDE * Math.sin((2 * Math.PI * TONE_HZ * (startSample + i)) / rate));
    if (format === 'pcm16') data.writeInt16LE(v, i * 2);
    else data[i] = format === 'g711_ulaw' ? linearToUlaw(v) : linearToAlaw(v);
  }
  return { data, samples };
}

export function linearToUlaw(sample: number): number {
  const BIAS = 0x84;
  const CLIP = 32635;
  const sign = sample < 0 ? 0x80 : 0;
  let s = Math.min(Math.abs(sample), CLIP) + BIAS;
  let exponent = 7;
  for (let mask = 0x4000; (s & mask) === 0 && exponent > 0; mask >>= 1) exponent--;
  const mantissa = (s >> (exponent + 3)) & 0x0f;
  s = ~(sign | (exponent << 4) | mantissa);
  return s & 0xff;
}

export function linearToAlaw(sample: number): number {
  const sign = sample >= 0 ? 0xd5 : 0x55;
  let s = Math.min(Math.abs(sample), 32767);
  let out: number;
  if (s < 256) {
    out = s >> 4;
  } else {
    let exponent = 7;
    for (let mask = 0x4000; (s & mask) === 0 && exponent > 1; mask >>= 1) exponent--;
    s = (s >> (exponent + 3)) & 0x0f;
    out = (exponent << 4) | s;
  }
  return (out ^ sign) & 0xff;
}
