/**
 * `ws` masks and unmasks every client frame byte by byte in JavaScript unless the optional
 * `bufferutil` addon loads; with audio frames that is the largest single cost of relaying. The
 * addon ships prebuilt for common platforms and falls back to JavaScript elsewhere (musl,
 * arm64 without a compiler), silently — so the relay says at start-up which one it runs.
 */
export function hasNativeFrameMasking(): boolean {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const addon = require('bufferutil') as { mask?: unknown };
    return typeof addon.mask === 'function' && Function.prototype.toString.call(addon.mask).includes('[native code]');
  } catch {
    return false;
  }
}
