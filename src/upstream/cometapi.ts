import type { UpstreamConfig } from '../config/config';
import { openAiCompatibleProvider } from './openai-compatible';
import type { UpstreamProvider } from './provider';

/** CometAPI: OpenAI-compatible, still serving the beta preview snapshot by default. */
export function cometApiProvider(c: UpstreamConfig): UpstreamProvider {
  return openAiCompatibleProvider({
    name: 'cometapi',
    baseUrl: c.baseUrl ?? 'https://api.cometapi.com/v1',
    apiKey: c.apiKey ?? '',
    dialect: c.dialect,
    dialects: c.dialects,
  });
}
