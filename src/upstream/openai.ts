import type { UpstreamConfig } from '../config/config';
import { openAiCompatibleProvider } from './openai-compatible';
import type { UpstreamProvider } from './provider';

/** api.openai.com: GA dialect by default (the beta preview models are shut down there). */
export function openAiProvider(c: UpstreamConfig): UpstreamProvider {
  return openAiCompatibleProvider({
    name: 'openai',
    baseUrl: c.baseUrl ?? 'https://api.openai.com/v1',
    apiKey: c.apiKey ?? '',
    dialect: c.dialect,
    dialects: c.dialects,
    organization: c.organization,
    project: c.project,
  });
}
