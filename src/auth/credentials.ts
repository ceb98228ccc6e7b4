import type { IncomingHttpHeaders } from 'node:http';
import { unauthorized } from './errors';
import { decodeQueryComponent, isCredentialParam, rawQueryParams } from './query-credentials';

/** Prefix of the subprotocol in which OpenAI's browser clients carry their key. */
export const SUBPROTOCOL_KEY_PREFIX = 'openai-insecure-api-key.';
export const REALTIME_SUBPROTOCOL = 'realtime';
export const BETA_SUBPROTOCOL = 'openai-beta.realtime-v1';

export type CredentialSource = 'authorization' | 'api-key' | 'subprotocol';

export interface ExtractedCredential {
  /** The raw credential. Never log it; log the id the authenticator derives from it. */
  value: string;
  source: CredentialSource;
}

function headerString(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The subprotocols a WebSocket client offered, in order (the header is a comma-separated list). */
export function offeredSubprotocols(headers: IncomingHttpHeaders): string[] {
  const raw = headerString(headers, 'sec-websocket-protocol');
  if (!raw) return [];
  return raw
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}

/**
 * The subprotocol the relay answers with: `realtime` when offered, as OpenAI does, otherwise none.
 * Never the key-bearing entry, which would echo the credential back in the response headers.
 * Shaped for ws' `handleProtocols(protocols: Set<string>)`.
 */
export function selectSubprotocol(offered: Iterable<string> | string | undefined): string | false {
  if (offered === undefined) return false;
  const list = typeof offered === 'string' ? offered.split(',').map((p) => p.trim()) : [...offered];
  return list.includes(REALTIME_SUBPROTOCOL) ? REALTIME_SUBPROTOCOL : false;
}

/** True when the client asked for the beta dialect, by header or (browsers) by subprotocol. */
export function requestsBetaDialect(headers: IncomingHttpHeaders): boolean {
  const beta = headerString(headers, 'openai-beta');
  if (beta && /realtime=v1/i.test(beta)) return true;
  return offeredSubprotocols(headers).includes(BETA_SUBPROTOCOL);
}

/**
 * Refuses credentials in the URL: query strings end up in access logs, proxies and browser
 * history, so a key sent there must be treated as leaked rather than silently accepted. Names
 * and values are judged decoded (`?a=%72k_…` is a relay key), by the same test the log
 * redaction uses.
 */
export function assertNoQueryCredential(url: string | undefined): void {
  if (!url || !url.includes('?')) return;
  for (const { name, value } of rawQueryParams(url)) {
    if (isCredentialParam(name, value)) {
      throw unauthorized(
        'credential_in_query',
        `Credentials are not accepted in the query string (parameter '${decodeQueryComponent(name).slice(0, 64)}'). Send 'Authorization: Bearer <key>', ` +
          `or from a browser the WebSocket subprotocol '${SUBPROTOCOL_KEY_PREFIX}<key>'; treat the key you sent as leaked.`,
      );
    }
  }
}

/**
 * Finds the credential of a request: `Authorization: Bearer`, else Azure's `api-key` header,
 * else a browser subprotocol. A header wins over a subprotocol because server-side clients that
 * set both mean the header. Returns null when there is none.
 */
export function extractCredential(headers: IncomingHttpHeaders, opts: { url?: string } = {}): ExtractedCredential | null {
  assertNoQueryCredential(opts.url);
  const auth = headerString(headers, 'authorization');
  if (auth !== undefined && auth.trim() !== '') {
    const m = /^Bearer[ \t]+(\S+)\s*$/i.exec(auth.trim());
    if (!m) throw unauthorized('invalid_api_key', "The Authorization header must be 'Bearer <key>'.");
    return { value: m[1], source: 'authorization' };
  }
  // Azure OpenAI's clients (AzureOpenAI in the openai SDKs) send their key in `api-key`.
  const apiKey = headerString(headers, 'api-key')?.trim();
  if (apiKey) return { value: apiKey, source: 'api-key' };
  for (const p of offeredSubprotocols(headers)) {
    if (p.startsWith(SUBPROTOCOL_KEY_PREFIX) && p.length > SUBPROTOCOL_KEY_PREFIX.length) {
      return { value: p.slice(SUBPROTOCOL_KEY_PREFIX.length), source: 'subprotocol' };
    }
  }
  return null;
}
