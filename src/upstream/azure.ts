import type { ApiDialect, UpstreamConfig } from '../config/config';
import { toWebSocketBase, type UpstreamProvider, type UpstreamTarget } from './provider';

/**
 * Azure OpenAI names a deployment instead of a model and takes its key in `api-key`.
 * Beta: `/openai/realtime?api-version=…&deployment=…`; GA: `/openai/v1/realtime?model=…`.
 */
export function azureProvider(c: UpstreamConfig): UpstreamProvider {
  if (!c.azure) throw new Error('azure provider needs AZURE_OPENAI_RESOURCE or AZURE_OPENAI_ENDPOINT');
  const { endpoint, apiVersion } = c.azure;
  const wsBase = toWebSocketBase(endpoint);
  const headers: Record<string, string> = { 'api-key': c.apiKey ?? '' };
  const beta = (d: ApiDialect): Record<string, string> => (d === 'beta' ? { 'OpenAI-Beta': 'realtime=v1' } : {});

  return {
    name: 'azure',
    dialect: c.dialect,
    dialects: c.dialects,
    realtimeTarget(deployment: string, sessionId: string, dialect: ApiDialect = c.dialect): UpstreamTarget {
      const d = encodeURIComponent(deployment);
      const url =
        dialect === 'ga'
          ? `${wsBase}/openai/v1/realtime?model=${d}`
          : `${wsBase}/openai/realtime?api-version=${encodeURIComponent(apiVersion)}&deployment=${d}`;
      return { url, headers: { ...headers, ...beta(dialect), 'X-Client-Request-Id': sessionId } };
    },
    httpTarget(path: string): UpstreamTarget {
      const url =
        c.dialect === 'ga'
          ? `${endpoint}/openai/v1${path}`
          : `${endpoint}/openai${path}?api-version=${encodeURIComponent(apiVersion)}`;
      return { url, headers: { ...headers, ...beta(c.dialect), 'Content-Type': 'application/json' } };
    },
  };
}
