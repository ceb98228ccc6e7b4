import type { UsageTotals } from './usage';

export type Dialect = 'beta' | 'ga';

export interface SimulatorLogger {
  info(...a: unknown[]): void;
  warn(...a: unknown[]): void;
}

export interface SimulatorOptions {
  /** 0 = ephemeral (default). */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** When set, handshakes and HTTP calls must present it (Bearer, `api-key`, subprotocol) or a minted ephemeral key. */
  apiKey?: string;
  /** Known models; a model is also known if it extends one's family (`gpt-realtime-…`, `…-preview-<date>`). */
  models?: string[];
  /** Duration of each output audio delta, default 100 ms. */
  audioChunkMs?: number;
  /** Pause between streamed deltas (default 5 ms) so cancels and faults can land mid-response. */
  deltaIntervalMs?: number;
  /** Seeds the pseudo-random usage (cached-token fractions). */
  seed?: number;
  logger?: SimulatorLogger;
  /**
   * Dialects served. Default both. `['ga']` is OpenAI since May 2026: a beta request (header,
   * subprotocol or the Azure preview path) is upgraded, answered with an `error` event
   * `beta_api_shape_disabled` and closed with 4000, and the beta mint endpoints answer HTTP 400
   * with the same code. `['beta']` is CometAPI: every session speaks beta whatever the client
   * asks, and there is no GA client_secrets endpoint.
   */
  dialects?: Dialect[];
  /** Clock in ms, for expiring minted keys in tests without waiting. Default Date.now. */
  now?: () => number;
}

export interface SimulatorFaults {
  /** Answer the upgrade with this HTTP status and a JSON error body. */
  handshakeStatus: number | null;
  /** Hold the upgrade unanswered this long (Infinity: never answer). */
  handshakeStallMs: number | null;
  /** Destroy the TCP socket (no close frame) after N deltas of a response. */
  dropMidResponseAfterDeltas: number | null;
  /** Close with this code after the first delta of a response. */
  closeMidResponseWithCode: number | null;
  /** Accept response.create, then send nothing for it (and ignore its cancel). */
  stallResponses: boolean;
  /** Answer response.create with this error event instead of a response. */
  errorOnResponseCreate: { type: string; code: string; message: string } | null;
  /** Expire sessions after this long: `session_expired` error event, then close 1001. */
  sessionMaxMs: number | null;
  /** Refuse sideband attaches (`GET /v1/realtime?call_id=`) with this HTTP status; calls still answer. */
  sidebandStatus: number | null;
}

export const NO_FAULTS: Readonly<SimulatorFaults> = Object.freeze({
  handshakeStatus: null,
  handshakeStallMs: null,
  dropMidResponseAfterDeltas: null,
  closeMidResponseWithCode: null,
  stallResponses: false,
  errorOnResponseCreate: null,
  sessionMaxMs: null,
  sidebandStatus: null,
});

export interface ReceivedClientEvent {
  connectionId: string;
  /** The event's `type`, or '' when the frame was not a JSON object with a string type. */
  type: string;
  raw: string;
}

export interface SimulatorStats {
  connectionsOpened: number;
  connectionsClosed: number;
  /** response.create requests accepted (including stalled ones). */
  responses: number;
  responseDoneSent: number;
  cancelled: number;
  mintedKeys: number;
  usageTotals: UsageTotals;
  usageByClientRequestId: Map<string, UsageTotals>;
  receivedClientEvents: ReceivedClientEvent[];
  /** Closes the client initiated (1006 when it vanished without a close frame). */
  lastCloseFromClient: Map<string, { code: number; reason: string }>;
  /** WebRTC calls answered (POST /v1/realtime/calls). */
  callsCreated: number;
  /** Calls ended through POST /v1/realtime/calls/{id}/hangup. */
  callHangups: number;
}

export interface SimulatedConnectionInfo {
  id: string;
  sessionId: string;
  model: string;
  dialect: Dialect;
  path: string;
  /** Lower-cased names, values as received (repeated headers joined with ', '). */
  headers: Record<string, string>;
  clientRequestId?: string;
}
