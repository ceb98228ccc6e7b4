import type { ApiDialect, ProviderName } from '../config/config';

/** Where and how to open one upstream realtime WebSocket. Holds the key: never log it. */
export interface UpstreamTarget {
  url: string;
  headers: Record<string, string>;
}

/** An upstream realtime service: how to reach its WebSocket and its HTTP API. */
export interface UpstreamProvider {
  readonly name: ProviderName;
  readonly dialect: ApiDialect;
  /** The WebSocket target for a session with this model (a deployment name on Azure). */
  realtimeTarget(model: string, sessionId: string): UpstreamTarget;
  /** An HTTP endpoint of the provider's realtime API (path like `/realtime/client_secrets`). */
  httpTarget(path: string): UpstreamTarget;
}

/** `https://host/v1` → `wss://host/v1`: OpenAI's SDKs derive the WebSocket URL the same way. */
export function toWebSocketBase(httpBase: string): string {
  return httpBase.replace(/^http(s?):\/\//, (_m, s: string) => `ws${s}://`).replace(/\/+$/, '');
}
