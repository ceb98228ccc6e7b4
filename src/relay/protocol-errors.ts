/**
 * The relay speaks to clients in the protocol's own `error` event shape, so that client code
 * written for the provider handles the relay's refusals with the code it already has.
 */
export interface ProtocolError {
  type: string;
  code: string;
  message: string;
  param?: string | null;
  /** The offending client event's `event_id`, when it had one. */
  event_id?: string | null;
}

let counter = 0;
const PREFIX = `event_relay_${process.pid.toString(36)}_`;

/** Serialised `error` event, ready to send. */
export function errorEvent(e: ProtocolError): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return JSON.stringify({
    type: 'error',
    event_id: `${PREFIX}${counter.toString(36)}`,
    error: { type: e.type, code: e.code, message: e.message, param: e.param ?? null, event_id: e.event_id ?? null },
  });
}

/** The client event id from a parsed event, for `error.event_id`. */
export function clientEventId(event: Record<string, unknown> | undefined): string | null {
  const id = event?.event_id;
  return typeof id === 'string' ? id : null;
}
