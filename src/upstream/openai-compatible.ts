import type { ApiDialect, ProviderName } from '../config/config';
import { toWebSocketBase, type UpstreamProvider, type UpstreamTarget } from './provider';

export interface OpenAiCompatibleOptions {
  name: ProviderName;
  baseUrl: string;
  apiKey: string;
  dialect: ApiDialect;
  organization?: string;
  project?: string;
}

/**
 * OpenAI's wire conventions: `{base}/realtime?model=…` with a Bearer key, and the beta
 * dialect selected by the `OpenAI-Beta: realtime=v1` header. CometAPI and any compatible
 * service follow them, so they differ only in base URL, key and default dialect.
 */
export function openAiCompatibleProvider(o: OpenAiCompatibleOptions): UpstreamProvider {
  const wsBase = toWebSocketBase(o.baseUrl);
  const httpBase = o.baseUrl.replace(/\/+$/, '');
  const common: Record<string, string> = { Authorization: `Bearer ${o.apiKey}` };
  if (o.dialect === 'beta') common['OpenAI-Beta'] = 'realtime=v1';
  if (o.organization) common['OpenAI-Organization'] = o.organization;
  if (o.project) common['OpenAI-Project'] = o.project;

  return {
    name: o.name,
    dialect: o.dialect,
    realtimeTarget(model: string, sessionId: string): UpstreamTarget {
      return {
        url: `${wsBase}/realtime?model=${encodeURIComponent(model)}`,
        headers: { ...common, 'X-Client-Request-Id': sessionId },
      };
    },
    httpTarget(path: string): UpstreamTarget {
      return { url: `${httpBase}${path}`, headers: { ...common, 'Content-Type': 'application/json' } };
    },
  };
}
