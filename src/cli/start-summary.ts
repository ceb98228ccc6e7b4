/**
 * What the operator sees once the relay listens: one summary of what is running (provider,
 * dialect, default model, database, Redis, admin token, demo and docs, native masking, TLS).
 * Pretty text in development, where a person reads it; one JSON log line (`relay listening`)
 * elsewhere, where a log pipeline does. The development admin key, when the start made it, is
 * printed here, once, with a request that uses it.
 */
import path from 'node:path';
import type { DevAdminKey } from '../auth/dev-admin-key';
import type { RelayConfig } from '../config/config';
import { describeDatabaseUrl } from '../storage/open-checked';

export interface StartFacts {
  /** As Fastify reports it, e.g. http://127.0.0.1:8080. */
  url: string;
  nativeMasking: boolean;
  devKey: DevAdminKey;
}

export interface StartSummary {
  url: string;
  provider: string;
  dialect: string;
  default_model: string;
  database: string;
  redis: string;
  admin_token: 'set' | 'not set';
  demo_url: string | null;
  docs_url: string;
  realtime_url: string;
  native_masking: boolean;
  tls: string;
  /** The file a Node client must trust (self-signed TLS only). */
  node_extra_ca_certs?: string;
  dev_admin_key_id?: string;
}

/** The address a client on this machine dials: a wildcard or loopback bind reads as localhost. */
function clientBase(url: string): string {
  const u = new URL(url);
  if (['0.0.0.0', '127.0.0.1', '[::]', '[::1]', '::'].includes(u.hostname)) u.hostname = 'localhost';
  return u.origin;
}

function redisOf(url: string | undefined): string {
  if (!url) return 'none (limits kept in this process)';
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'configured';
  }
}

export function startSummary(config: RelayConfig, facts: StartFacts): StartSummary {
  const base = clientBase(facts.url);
  const ws = base.replace(/^http/, 'ws');
  const summary: StartSummary = {
    url: facts.url,
    provider: config.upstream.provider === 'simulator' ? 'simulator (built in, no provider key set)' : config.upstream.provider,
    dialect: config.upstream.dialect,
    default_model: config.models.default,
    database: describeDatabaseUrl(config.storage.databaseUrl),
    redis: redisOf(config.limits.redisUrl),
    admin_token: config.auth.adminToken ? 'set' : 'not set',
    demo_url: config.demoEnabled ? `${base}/demo` : null,
    docs_url: `${base}/docs/json`,
    realtime_url: `${ws}/v1/realtime`,
    native_masking: facts.nativeMasking,
    tls: config.tls ? (config.tls.selfSigned ? `self-signed (${path.resolve(config.tls.certFile)})` : config.tls.certFile) : 'off',
  };
  if (config.tls?.selfSigned) summary.node_extra_ca_certs = path.resolve(config.tls.certFile);
  if (facts.devKey.state !== 'not_applicable') summary.dev_admin_key_id = facts.devKey.record.id;
  return summary;
}

/** The development summary as a person reads it. */
export function prettySummary(s: StartSummary, devKey: DevAdminKey): string {
  const rows: [string, string][] = [
    ['listening', s.url],
    ['provider', s.provider],
    ['dialect', s.dialect],
    ['default model', s.default_model],
    ['database', s.database],
    ['redis', s.redis],
    ['admin token', s.admin_token === 'set' ? 'set (RELAY_ADMIN_TOKEN)' : 'not set'],
    ['realtime', s.realtime_url],
    ['demo', s.demo_url ?? 'off'],
    ['API docs', s.docs_url],
    ['native masking', s.native_masking ? 'yes (bufferutil)' : 'no (bufferutil did not load)'],
    ['tls', s.tls],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  let out = `\nrealtime-relay is running\n${rows.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join('\n')}\n`;
  const base = new URL(s.docs_url).origin;
  const curlCa = s.node_extra_ca_certs ? ` --cacert ${s.node_extra_ca_certs}` : '';
  if (s.node_extra_ca_certs) {
    out += `\nSelf-signed TLS: Node clients (openai's OpenAIRealtimeWS, for minting and the socket) need\n  export NODE_EXTRA_CA_CERTS=${s.node_extra_ca_certs}\n`;
  }
  if (devKey.state === 'created') {
    out +=
      `\nDevelopment admin key (shown only this once; it is stored hashed, revoke it with 'realtime-relay keys revoke ${devKey.record.id}'):\n\n  ${devKey.key}\n\n` +
      `Create a key for an app user with it:\n\n` +
      `  curl -s${curlCa} -X POST ${base}/admin/keys -H 'authorization: Bearer ${devKey.key}' \\\n` +
      `    -H 'content-type: application/json' -d '{"user":"alice","scopes":["realtime","mint","usage"]}'\n\n` +
      `Then connect to ${s.realtime_url} with 'Authorization: Bearer rk_…'${s.demo_url ? ` or open ${s.demo_url}` : ''}.\n`;
  } else if (devKey.state === 'exists') {
    out += `\nDevelopment admin key ${devKey.record.id}: made at the first start, its secret was printed then (lost it? 'realtime-relay keys create --user you --scopes admin').\n`;
  }
  return out;
}
