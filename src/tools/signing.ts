import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * `Relay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, keyed with
 * TOOL_WEBHOOK_SECRET. The timestamp is inside the MAC so a captured call cannot be replayed
 * later with a fresh `t`; a backend rejects signatures older than its tolerance.
 */
export function signatureHeader(secret: string, rawBody: string, unixSeconds: number): string {
  const mac = createHmac('sha256', secret).update(`${unixSeconds}.${rawBody}`).digest('hex');
  return `t=${unixSeconds},v1=${mac}`;
}

/** What a backend does (and the tests' webhook server): true when the header signs this body within the tolerance. */
export function verifySignature(secret: string, rawBody: string, header: string | undefined, nowSeconds: number, toleranceS = 300): boolean {
  if (!header) return false;
  const parts = new Map(header.split(',').map((p) => p.split('=', 2) as [string, string]));
  const t = Number(parts.get('t'));
  const v1 = parts.get('v1');
  if (!Number.isInteger(t) || !v1 || !/^[0-9a-f]{64}$/.test(v1) || Math.abs(nowSeconds - t) > toleranceS) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${rawBody}`).digest();
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'));
}
