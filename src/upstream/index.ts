import type { UpstreamConfig } from '../config/config';
import { azureProvider } from './azure';
import { cometApiProvider } from './cometapi';
import { openAiProvider } from './openai';
import { openAiCompatibleProvider } from './openai-compatible';
import type { UpstreamProvider } from './provider';

export type { UpstreamProvider, UpstreamTarget } from './provider';

/**
 * The provider chosen by UPSTREAM_PROVIDER. The simulator is a compatible service whose
 * base URL and key are only known once it has started, so the caller passes them in.
 */
export function createProvider(c: UpstreamConfig, simulator?: { baseUrl: string; apiKey: string }): UpstreamProvider {
  switch (c.provider) {
    case 'openai':
      return openAiProvider(c);
    case 'cometapi':
      return cometApiProvider(c);
    case 'azure':
      return azureProvider(c);
    case 'compatible':
      return openAiCompatibleProvider({ name: 'compatible', baseUrl: c.baseUrl ?? '', apiKey: c.apiKey ?? '', dialect: c.dialect, dialects: c.dialects, organization: c.organization, project: c.project });
    case 'simulator':
      if (!simulator) throw new Error('the simulator provider needs a running simulator');
      return openAiCompatibleProvider({ name: 'simulator', baseUrl: simulator.baseUrl, apiKey: simulator.apiKey, dialect: c.dialect, dialects: c.dialects });
  }
}
