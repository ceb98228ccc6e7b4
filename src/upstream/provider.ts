import type { ApiDialect, ProviderName } from '../config/config';

/** Where and how to open one upstream realtime WebSocket. Holds the key: never log it. */
export interface UpstreamTarget {
  url: string;
  headers: Record<string, string>;
}

/** An upstream realtime service: how to reach its WebSocket and its HTTP API. */
export interface UpstreamProvider {
  readonly name: ProviderName;
  /** The dialect spoken upstream by default (the first it accepts). */
  readonly dialect: ApiDialect;
  /** Every dialect the upstream accepts, preferred first. */
  readonly dialects: readonly ApiDialect[];
  /**
   * The WebSocket target for a session with this model (a deployment name on Azure), in
   * `dialect` (default: the provider's). The beta header goes only with a beta session.
   */
  realtimeTarget(model: string, sessionId: string, dialect?: ApiDialect): UpstreamTarget;
  /** An HTTP endpoint of the provider's realtime API (path like `/realtime/client_secrets`). */
  httpTarget(path: string): UpstreamTarget;
}

/** `https://host/v1` → `wss://host/v1`: OpenAI's SDKs derive the WebSocket URL the same way. */
export function toWebSocketBase(httpBase: string): string {
  return httpBase.replace(/^http(s?):\/\//, (_m, s: string) => `ws${s}://`).replace(/\/+$/, '');
}
