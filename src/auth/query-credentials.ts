/**
 * Which query-string parameters carry a credential, decided on the *decoded* text: `?a=%72k_…`
 * is `?a=rk_…` to every server that reads it. The relay refuses such a request
 * (auth/credentials.ts) and masks the value wherever the URL is logged (logging.ts), both
 * through this one test so they can never disagree.
 */

const CREDENTIAL_NAMES = /^(api[-_]?key|key|token|access[-_]?token|auth|authorization|bearer|jwt|client[-_]?secret|secret)$/i;
/** Relay API and ephemeral keys, provider keys, bearer values, and JWTs (base64url of `{"`). */
const CREDENTIAL_VALUES = /^\s*(rk_|ek_|sk-|bearer\s|eyJ)/i;

/** How many rounds of percent-decoding are undone: a value encoded twice is still the secret. */
const DECODE_ROUNDS = 3;

/**
 * Percent-decodes as a form value (`+` is a space), repeatedly while that changes the text, so
 * `%2572k_` reads as `rk_`. A malformed escape stops the decoding at the last good round.
 */
export function decodeQueryComponent(raw: string): string {
  let text = raw.replace(/\+/g, ' ');
  for (let i = 0; i < DECODE_ROUNDS; i++) {
    let next: string;
    try {
      next = decodeURIComponent(text);
    } catch {
      return text;
    }
    if (next === text) return text;
    text = next;
  }
  return text;
}

/** True when a parameter (name and value, both still percent-encoded) carries a credential. */
export function isCredentialParam(rawName: string, rawValue: string): boolean {
  return CREDENTIAL_NAMES.test(decodeQueryComponent(rawName).trim()) || CREDENTIAL_VALUES.test(decodeQueryComponent(rawValue));
}

/**
 * Splits the query string of a request target into its raw `name=value` pairs (`&` and `;`
 * separated, as lenient servers read them), without decoding.
 */
export function rawQueryParams(url: string): Array<{ name: string; value: string }> {
  const q = url.indexOf('?');
  if (q < 0) return [];
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  return query
    .split(/[&;]/)
    .filter((p) => p.length > 0)
    .map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? { name: p, value: '' } : { name: p.slice(0, eq), value: p.slice(eq + 1) };
    });
}

/** The URL with the value of every credential-bearing query parameter replaced by `[redacted]`. */
export function redactQueryCredentials(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  const redacted = query.replace(/([^&;=]*)(=?)([^&;]*)/g, (whole, name: string, eq: string, value: string) => {
    if (whole === '') return whole;
    return isCredentialParam(name, value) ? `${name}${eq || '='}[redacted]` : whole;
  });
  return `${url.slice(0, q + 1)}${redacted}${hash < 0 ? '' : url.slice(hash)}`;
}
