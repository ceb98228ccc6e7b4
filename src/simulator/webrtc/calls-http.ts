/**
 * The simulator's WebRTC HTTP surface, as OpenAI's GA API has it:
 *   POST {base}/realtime/calls            raw `application/sdp`, or multipart `sdp` + `session`
 *   POST {base}/realtime/calls/{id}/hangup
 * (Azure: the same under /openai/v1.) The sideband WebSocket is attached in simulator.ts.
 */
import { isObject, type JsonObject } from '../json';
import { apiError, type HttpAnswer } from '../mint';

export const CALLS_PATHS = new Set(['/v1/realtime/calls', '/openai/v1/realtime/calls']);
const HANGUP_PATH = /^(?:\/openai)?\/v1\/realtime\/calls\/([A-Za-z0-9_-]{1,100})\/hangup$/;

export function hangupCallId(path: string): string | null {
  return HANGUP_PATH.exec(path)?.[1] ?? null;
}

export interface CallOffer {
  sdp: string;
  /** The `session` field of the multipart form, if any. */
  session?: JsonObject;
}

/** Reads either body form; an HttpAnswer when the body is unusable. */
export async function readCallOffer(contentType: string, body: Buffer): Promise<CallOffer | HttpAnswer> {
  const ct = contentType.toLowerCase();
  if (ct.startsWith('application/sdp')) {
    const sdp = body.toString('utf8');
    return sdp.startsWith('v=') ? { sdp } : apiError(400, 'Invalid SDP offer.', 'invalid_request_error', 'invalid_offer', 'sdp');
  }
  if (ct.startsWith('multipart/form-data')) {
    let form: FormData;
    try {
      // undici's multipart parser: the platform's own, not a hand-written one.
      form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    } catch {
      return apiError(400, 'Could not parse the multipart body.', 'invalid_request_error', null);
    }
    const sdp = await fieldText(form.get('sdp'));
    if (sdp === undefined || !sdp.startsWith('v=')) {
      return apiError(400, "Missing or invalid required parameter: 'sdp'.", 'invalid_request_error', 'missing_required_parameter', 'sdp');
    }
    const rawSession = await fieldText(form.get('session'));
    if (rawSession === undefined) return { sdp };
    let session: unknown;
    try {
      session = JSON.parse(rawSession);
    } catch {
      return apiError(400, "Invalid 'session': expected a JSON object.", 'invalid_request_error', 'invalid_json', 'session');
    }
    if (!isObject(session)) return apiError(400, "Invalid 'session': expected a JSON object.", 'invalid_request_error', 'invalid_type', 'session');
    return { sdp, session };
  }
  return apiError(415, `Unsupported content type '${contentType}'; send application/sdp or multipart/form-data.`, 'invalid_request_error', 'unsupported_content_type');
}

async function fieldText(v: ReturnType<FormData["get"]>): Promise<string | undefined> {
  if (v === null) return undefined;
  return typeof v === 'string' ? v : await v.text();
}
