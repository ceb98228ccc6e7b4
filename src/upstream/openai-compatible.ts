import type { ApiDialect, ProviderName } from '../config/config';
import { toWebSocketBase, type UpstreamProvider, type UpstreamTarget } from './provider';

export interface OpenAiCompatibleOptions {
  name: ProviderName;
  baseUrl: string;
  apiKey: string;
  dialect: ApiDialect;
  /** Accepted dialects, preferred first; default `[dialect]`. */
  dialects?: readonly ApiDialect[];
  organization?: string;
  project?: string;
}

/**
 * OpenAI's wire conventions: `{base}/realtime?model=…` with a Bearer key, and the beta
 * dialect selected by the `OpenAI-Beta: realtime=v1` header. CometAPI and any compatible
 * service follow them, so they differ only in base URL, key and default dialect.
 */
const BETA_HEADER = { 'OpenAI-Beta': 'realtime=v1' } as const;

export function openAiCompatibleProvider(o: OpenAiCompatibleOptions): UpstreamProvider {
  const wsBase = toWebSocketBase(o.baseUrl);
  const httpBase = o.baseUrl.replace(/\/+$/, '');
  const common: Record<string, string> = { Authorization: `Bearer ${o.apiKey}` };
  if (o.organization) common['OpenAI-Organization'] = o.organization;
  if (o.project) common['OpenAI-Project'] = o.project;

  return {
    name: o.name,
    dialect: o.dialect,
    dialects: o.dialects ?? [o.dialect],
    realtimeTarget(model: string, sessionId: string, dialect: ApiDialect = o.dialect): UpstreamTarget {
      return {
        url: `${wsBase}/realtime?model=${encodeURIComponent(model)}`,
        headers: { ...common, ...(dialect === 'beta' ? BETA_HEADER : {}), 'X-Client-Request-Id': sessionId },
      };
    },
    httpTarget(path: string): UpstreamTarget {
      return { url: `${httpBase}${path}`, headers: { ...common, ...(o.dialect === 'beta' ? BETA_HEADER : {}), 'Content-Type': 'application/json' } };
    },
  };
}
