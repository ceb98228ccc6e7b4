import { delay } from './ws-client';

/**
 * Reads until `ok` holds or `ms` pass, then returns the last value read, so that the test's own
 * assertion on it says what was wrong (a poll deadline, not a timed assertion).
 */
export async function until<T>(read: () => Promise<T> | T, ok: (v: T) => boolean, ms = 8000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await read();
  while (!ok(v) && Date.now() < deadline) {
    await delay(25);
    v = await read();
  }
  return v;
}
