// AudioWorklet processor: hands the microphone's samples (first channel, at the context's own
// rate) to the page, which resamples to 24 kHz. Copied because the render quantum's buffer is
// reused by the audio thread after process() returns.
class PcmCapture extends AudioWorkletProcessor {
  process(inputs) {
    const input = inputs[0];
    if (input && input.length > 0 && input[0].length > 0) {
      let mono = input[0];
      if (input.length > 1) {
        mono = new Float32Array(input[0].length);
        for (const channel of input) for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / input.length;
      } else {
        mono = mono.slice();
      }
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
}

registerProcessor('pcm-capture', PcmCapture);
