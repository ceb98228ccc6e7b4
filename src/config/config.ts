import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv from 'ajv';
import { envSchema } from './env-schema';
import { parseModelAliases } from '../models/resolve';
import { describeSettingError, misspelledSettings } from './setting-errors';

export type ProviderName = 'openai' | 'cometapi' | 'azure' | 'compatible' | 'simulator';
export type ApiDialect = 'ga' | 'beta';

export interface UpstreamConfig {
  provider: ProviderName;
  /** Absent only for the built-in simulator, which is started with its own key. */
  apiKey?: string;
  /** An http(s)://…/v1 base; the WebSocket URL is derived from it. */
  baseUrl?: string;
  /** The dialect the relay speaks upstream unless a client's own is accepted: `dialects[0]`. */
  dialect: ApiDialect;
  /** Dialects the upstream accepts, preferred first (config/providers.json, UPSTREAM_DIALECTS). */
  dialects: ApiDialect[];
  azure?: { endpoint: string; apiVersion: string; deployment?: string };
  organization?: string;
  project?: string;
  connectTimeoutMs: number;
}

/**
 * RFC 6455 masks client frames so that an intermediary that misreads WebSocket bytes as HTTP
 * cannot be steered by attacker-chosen payloads. Over TLS no intermediary sees the bytes, so
 * `auto` sends a zero mask there (the payload goes out as is, without a masked copy of every
 * audio frame) and random masks over plain ws://.
 */
export type UpstreamMasking = 'auto' | 'random' | 'none';

export interface RelayLimits {
  queueMaxFrames: number;
  queueMaxBytes: number;
  maxFrameBytes: number;
  highWaterBytes: number;
  compression: boolean;
  /** How frames to the upstream are masked; see `UpstreamMasking` and `upstreamMaskGenerator`. */
  upstreamMasking: UpstreamMasking;
  pingIntervalMs: number;
  idleTimeoutMs: number;
  maxSessionMs: number;
  cancelWaitMs: number;
  drainTimeoutMs: number;
}

export interface JwtConfig {
  secret?: string;
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
  userClaim: string;
  tenantClaim: string;
}

export interface AuthConfig {
  tokenSecret: string;
  /** True when RELAY_TOKEN_SECRET was not set and a per-process secret was generated. */
  tokenSecretGenerated: boolean;
  adminToken?: string;
  jwt: JwtConfig;
  ephemeralTtlS: number;
  ephemeralMaxTtlS: number;
  mintRatePerMinute: number;
  providerMintEnabled: boolean;
  cutSessionOnCredentialExpiry: boolean;
}

export interface RelayConfig {
  env: 'development' | 'production' | 'test';
  host: string;
  port: number;
  logLevel: string;
  upstream: UpstreamConfig;
  models: {
    default: string;
    allowed: string[] | null;
    /** Deprecation and shutdown dates (config/model-lifecycle.json). */
    lifecycleFile: string;
    /** MODEL_ALIASES: a shut-down model → the model served instead. */
    aliases: Record<string, string>;
  };
  relay: RelayLimits;
  /** WebRTC calls through the relay (src/routes/calls.ts). */
  calls: { sidebandReattachMs: number; lockedFieldAction: 'restore' | 'hangup'; forgedToolOutputAction: 'hangup' | 'log' };
  storage: {
    databaseUrl: string;
    spoolDir: string;
    /**
     * DATABASE_QUERY_TIMEOUT_MS: the deadline of each database statement the relay runs (see
     * OpenDatabaseOptions). Optional in the type only so hand-built test configs stay valid.
     */
    queryTimeoutMs?: number;
  };
  pricing: { pricesFile: string; unpricedPolicy: 'refuse' | 'fallback'; fallbackModel?: string };
  auth: AuthConfig;
  budgets: {
    exceededAction: 'refuse' | 'close';
    /** BUDGET_RESERVATION_FLOOR_USD: the least a response in flight holds against the budget (decimal USD). */
    reservationFloorUsd?: string;
    /** Decimal USD strings, as configured; parsed by the metering module. */
    defaults: { daily?: string; monthly?: string; total?: string };
    /** Budget alert webhook (BUDGET_ALERT_*); absent when no URL is set. */
    alerts?: { webhookUrl: string; secret: string; thresholds: number[] };
  };
  limits: {
    redisUrl?: string;
    /** Prefix of every Redis key, so several relay deployments can share one Redis. */
    redisKeyPrefix: string;
    maxSessionsPerUser: number;
    maxSessionsPerKey: number;
    connectionsPerMinutePerUser: number;
    bodyLimitBytes: number;
    /** Deepest nesting of a JSON request body; deeper bodies are refused with 400. */
    bodyMaxDepth: number;
    /** Failed authentications per client address per window before it gets 429; 0: off. */
    authFailureLimit: number;
    authFailureWindowMs: number;
    corsOrigins: string[];
  };
  metricsPort?: number;
  tls?: { certFile: string; keyFile: string; /** TLS_SELF_SIGNED: made at start if missing. */ selfSigned?: boolean };
  demoEnabled: boolean;
  /** Server-side tools (src/tools): the definitions file, how webhooks are signed, what is audited. */
  tools: {
    file: string;
    webhookSecret?: string;
    auditArguments: 'full' | 'hash';
    /** Invalid-argument calls of one tool in a row the model gets an explanation for before the relay stops offering it a retry. */
    maxArgumentAttempts: number;
  };
  /** Things worth telling the operator that do not stop the start (misspelled setting names). */
  warnings?: string[];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

interface ProviderDefaults {
  baseUrl?: string;
  dialects: ApiDialect[];
  dialectsConfigurable?: boolean;
  defaultModel: string;
  keyEnv?: string;
  azureApiVersion?: string;
}

const CONFIG_DIR = path.resolve(__dirname, '..', '..', '..', 'config');

function configDir(): string {
  // Compiled code lives in dist/src/config, sources in src/config: find config/ from either.
  for (const candidate of [CONFIG_DIR, path.resolve(__dirname, '..', '..', 'config')]) {
    try {
      readFileSync(path.join(candidate, 'defaults.json'));
      return candidate;
    } catch {
      /* try the next candidate */
    }
  }
  throw new ConfigError(`config/defaults.json not found near ${__dirname}`);
}

function readJson(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
}

const ajv = new Ajv({ coerceTypes: true, allErrors: false, useDefaults: false, strict: false });
const validateEnv = ajv.compile(envSchema);

function nonEmpty(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== '') out[k] = v;
  return out;
}

/**
 * The dialects an upstream accepts: the provider's known list, or for a configurable provider
 * UPSTREAM_DIALECTS (a comma list), else REALTIME_API_VERSION alone. A setting that asks a
 * fixed provider for a dialect it does not accept is refused: sending OpenAI the beta header
 * gets every session closed (beta_api_shape_disabled); beta clients are translated instead.
 */
function upstreamDialects(provider: ProviderName, d: ProviderDefaults, list: string | undefined, single: ApiDialect | undefined): ApiDialect[] {
  const setting = list !== undefined ? 'UPSTREAM_DIALECTS' : 'REALTIME_API_VERSION';
  const asked = list !== undefined ? [...new Set(list.split(',').map((x) => x.trim()))] as ApiDialect[] : single ? [single] : null;
  if (!asked) return [...d.dialects];
  if (d.dialectsConfigurable) return asked;
  const refused = asked.find((x) => !d.dialects.includes(x));
  if (refused) {
    throw new ConfigError(`Invalid setting ${setting}: provider ${provider} accepts only the ${d.dialects.join(', ')} dialect (clients speaking ${refused} are translated)`);
  }
  return asked;
}

/**
 * Builds the relay's configuration from defaults (config/defaults.json) overridden by the
 * environment. Throws ConfigError naming the first invalid or missing setting.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const dir = configDir();
  const defaults = readJson(path.join(dir, 'defaults.json'));
  delete defaults.$comment;
  const providers = readJson(path.join(dir, 'providers.json')) as unknown as Record<string, ProviderDefaults>;

  const raw: Record<string, unknown> = { ...defaults, ...nonEmpty(env) };
  if (!validateEnv(raw)) {
    throw new ConfigError(describeSettingError(validateEnv.errors?.[0], raw));
  }
  const s = raw as Record<string, string | number | boolean | undefined>;
  const str = (k: string): string | undefined => (s[k] === undefined ? undefined : String(s[k]));
  const num = (k: string): number => Number(s[k]);
  const bool = (k: string): boolean => s[k] === true;

  const nodeEnv = (str('NODE_ENV') ?? 'development') as RelayConfig['env'];
  const production = nodeEnv === 'production';

  const explicitKey = str('UPSTREAM_API_KEY');
  let provider = str('UPSTREAM_PROVIDER') as ProviderName | undefined;
  if (!provider) {
    if (str('UPSTREAM_BASE_URL')) provider = 'compatible';
    else if (explicitKey || str('OPENAI_API_KEY')) provider = 'openai';
    else if (production) {
      throw new ConfigError(
        'Missing setting UPSTREAM_API_KEY: production serves a real provider; set UPSTREAM_API_KEY to its key (and UPSTREAM_PROVIDER if it is not openai)',
      );
    } else provider = 'simulator';
  }
  if (provider === 'simulator' && production) {
    throw new ConfigError('Invalid setting UPSTREAM_PROVIDER: the simulator cannot serve in production');
  }
  const pDefaults = providers[provider];
  if (!pDefaults) throw new ConfigError(`Invalid setting UPSTREAM_PROVIDER: unknown provider ${provider}`);

  const apiKey = explicitKey ?? (pDefaults.keyEnv ? str(pDefaults.keyEnv) : undefined);
  if (provider !== 'simulator' && !apiKey) {
    const fallback = pDefaults.keyEnv ? ` (or ${pDefaults.keyEnv})` : '';
    throw new ConfigError(`Missing setting UPSTREAM_API_KEY${fallback}: provider ${provider} needs a key`);
  }

  let baseUrl = str('UPSTREAM_BASE_URL') ?? pDefaults.baseUrl;
  if (provider === 'compatible' && !baseUrl) {
    throw new ConfigError('Missing setting UPSTREAM_BASE_URL: provider compatible needs an http(s)://…/v1 base');
  }
  if (baseUrl) baseUrl = baseUrl.replace(/\/+$/, '');

  let azure: UpstreamConfig['azure'];
  if (provider === 'azure') {
    const endpoint =
      str('AZURE_OPENAI_ENDPOINT') ??
      (str('AZURE_OPENAI_RESOURCE') ? `https://${str('AZURE_OPENAI_RESOURCE')}.openai.azure.com` : undefined);
    if (!endpoint) throw new ConfigError('Missing setting AZURE_OPENAI_RESOURCE (or AZURE_OPENAI_ENDPOINT): provider azure needs it');
    azure = {
      endpoint: endpoint.replace(/\/+$/, ''),
      apiVersion: str('AZURE_OPENAI_API_VERSION') ?? pDefaults.azureApiVersion ?? '2024-10-01-preview',
      deployment: str('AZURE_OPENAI_DEPLOYMENT'),
    };
  }

  const dialects = upstreamDialects(provider, pDefaults, str('UPSTREAM_DIALECTS'), str('REALTIME_API_VERSION') as ApiDialect | undefined);

  const defaultModel = str('DEFAULT_MODEL') ?? azure?.deployment ?? pDefaults.defaultModel;
  const allowedRaw = str('ALLOWED_MODELS');
  const allowed = allowedRaw
    ? allowedRaw.split(',').map((m) => m.trim()).filter(Boolean)
    : null;
  if (allowed && allowed.length > 0 && !allowed.includes(defaultModel)) {
    throw new ConfigError(`Invalid setting DEFAULT_MODEL: ${defaultModel} is not in ALLOWED_MODELS`);
  }

  let aliases: Record<string, string>;
  try {
    aliases = parseModelAliases(str('MODEL_ALIASES'));
  } catch (err) {
    throw new ConfigError(`Invalid setting MODEL_ALIASES: ${(err as Error).message}`);
  }

  const tlsCert = str('TLS_CERT_FILE');
  const tlsKey = str('TLS_KEY_FILE');
  if (Boolean(tlsCert) !== Boolean(tlsKey)) {
    throw new ConfigError(`Missing setting ${tlsCert ? 'TLS_KEY_FILE' : 'TLS_CERT_FILE'}: TLS needs both a certificate and a key`);
  }

  const selfSigned = bool('TLS_SELF_SIGNED');
  if (selfSigned && production) {
    throw new ConfigError('Invalid setting TLS_SELF_SIGNED: a self-signed certificate is for local development; in production set TLS_CERT_FILE and TLS_KEY_FILE');
  }
  const selfSignedDir = str('TLS_SELF_SIGNED_DIR') ?? './data/tls';

  let tokenSecret = str('RELAY_TOKEN_SECRET');
  const tokenSecretGenerated = !tokenSecret;
  if (!tokenSecret) {
    if (production) {
      throw new ConfigError('Missing setting RELAY_TOKEN_SECRET: production needs a shared secret (32+ characters) to sign ephemeral keys');
    }
    tokenSecret = randomBytes(32).toString('base64url');
  }

  if (num('EPHEMERAL_KEY_TTL_S') > num('EPHEMERAL_KEY_MAX_TTL_S')) {
    throw new ConfigError('Invalid setting EPHEMERAL_KEY_TTL_S: larger than EPHEMERAL_KEY_MAX_TTL_S');
  }
  const alertUrl = str('BUDGET_ALERT_WEBHOOK_URL');
  const alertSecret = str('BUDGET_ALERT_WEBHOOK_SECRET');
  if (alertUrl && !alertSecret) {
    throw new ConfigError('Missing setting BUDGET_ALERT_WEBHOOK_SECRET: BUDGET_ALERT_WEBHOOK_URL needs a secret (16+ characters) to sign alerts');
  }
  const alertThresholds = [...new Set((str('BUDGET_ALERT_THRESHOLDS') ?? '80,100').split(',').map((t) => Number(t.trim())))].sort((a, b) => a - b);
  if (alertThresholds.some((t) => t < 1 || t > 1000)) {
    throw new ConfigError('Invalid setting BUDGET_ALERT_THRESHOLDS: each threshold is a percentage between 1 and 1000');
  }

  if (str('UNPRICED_MODEL_POLICY') === 'fallback' && !str('FALLBACK_PRICE_MODEL')) {
    throw new ConfigError('Missing setting FALLBACK_PRICE_MODEL: UNPRICED_MODEL_POLICY=fallback needs a model whose prices to use');
  }

  return {
    env: nodeEnv,
    host: str('HOST') ?? '0.0.0.0',
    port: num('PORT'),
    logLevel: str('LOG_LEVEL') ?? 'info',
    upstream: {
      provider,
      apiKey,
      baseUrl,
      dialect: dialects[0],
      dialects,
      azure,
      organization: str('OPENAI_ORGANIZATION'),
      project: str('OPENAI_PROJECT'),
      connectTimeoutMs: num('UPSTREAM_CONNECT_TIMEOUT_MS'),
    },
    models: {
      default: defaultModel,
      allowed: allowed && allowed.length > 0 ? allowed : null,
      lifecycleFile: str('MODEL_LIFECYCLE_FILE') ?? './config/model-lifecycle.json',
      aliases,
    },
    relay: {
      queueMaxFrames: num('CLIENT_QUEUE_MAX_FRAMES'),
      queueMaxBytes: num('CLIENT_QUEUE_MAX_BYTES'),
      maxFrameBytes: num('MAX_FRAME_BYTES'),
      highWaterBytes: num('BACKPRESSURE_HIGH_WATER_BYTES'),
      compression: bool('WS_COMPRESSION'),
      upstreamMasking: str('UPSTREAM_MASKING') as UpstreamMasking,
      pingIntervalMs: num('PING_INTERVAL_MS'),
      idleTimeoutMs: num('IDLE_TIMEOUT_MS'),
      maxSessionMs: num('MAX_SESSION_MS'),
      cancelWaitMs: num('CANCEL_WAIT_MS'),
      drainTimeoutMs: num('DRAIN_TIMEOUT_MS'),
    },
    calls: {
      sidebandReattachMs: num('CALL_SIDEBAND_REATTACH_MS'),
      lockedFieldAction: str('CALL_LOCKED_FIELD_ACTION') as 'restore' | 'hangup',
      forgedToolOutputAction: str('CALL_FORGED_TOOL_OUTPUT_ACTION') as 'hangup' | 'log',
    },
    storage: {
      databaseUrl: str('DATABASE_URL') ?? 'sqlite:./data/relay.db',
      spoolDir: str('SPOOL_DIR') ?? './data/spool',
      queryTimeoutMs: num('DATABASE_QUERY_TIMEOUT_MS'),
    },
    pricing: {
      pricesFile: str('PRICES_FILE') ?? './config/prices.json',
      unpricedPolicy: (str('UNPRICED_MODEL_POLICY') as 'refuse' | 'fallback') ?? 'refuse',
      fallbackModel: str('FALLBACK_PRICE_MODEL'),
    },
    auth: {
      tokenSecret,
      tokenSecretGenerated,
      adminToken: str('RELAY_ADMIN_TOKEN'),
      jwt: {
        secret: str('JWT_SECRET'),
        jwksUrl: str('JWT_JWKS_URL'),
        issuer: str('JWT_ISSUER'),
        audience: str('JWT_AUDIENCE'),
        userClaim: str('JWT_USER_CLAIM') ?? 'sub',
        tenantClaim: str('JWT_TENANT_CLAIM') ?? 'tenant',
      },
      ephemeralTtlS: num('EPHEMERAL_KEY_TTL_S'),
      ephemeralMaxTtlS: num('EPHEMERAL_KEY_MAX_TTL_S'),
      mintRatePerMinute: num('MINT_RATE_LIMIT_PER_MINUTE'),
      providerMintEnabled: bool('PROVIDER_MINT_ENABLED'),
      cutSessionOnCredentialExpiry: bool('CUT_SESSION_ON_CREDENTIAL_EXPIRY'),
    },
    budgets: {
      exceededAction: (str('BUDGET_EXCEEDED_ACTION') as 'refuse' | 'close') ?? 'refuse',
      reservationFloorUsd: str('BUDGET_RESERVATION_FLOOR_USD') ?? '0.01',
      defaults: {
        daily: str('DEFAULT_BUDGET_DAILY_USD'),
        monthly: str('DEFAULT_BUDGET_MONTHLY_USD'),
        total: str('DEFAULT_BUDGET_TOTAL_USD'),
      },
      alerts: alertUrl && alertSecret ? { webhookUrl: alertUrl, secret: alertSecret, thresholds: alertThresholds } : undefined,
    },
    limits: {
      redisUrl: str('REDIS_URL'),
      redisKeyPrefix: str('REDIS_KEY_PREFIX') as string,
      maxSessionsPerUser: num('MAX_SESSIONS_PER_USER'),
      maxSessionsPerKey: num('MAX_SESSIONS_PER_KEY'),
      connectionsPerMinutePerUser: num('CONNECTIONS_PER_MINUTE_PER_USER'),
      bodyLimitBytes: num('HTTP_BODY_LIMIT_BYTES'),
      bodyMaxDepth: num('HTTP_BODY_MAX_DEPTH'),
      authFailureLimit: num('AUTH_FAILURE_LIMIT'),
      authFailureWindowMs: num('AUTH_FAILURE_WINDOW_MS'),
      corsOrigins: (str('CORS_ORIGINS') ?? '').split(',').map((o) => o.trim()).filter(Boolean),
    },
    metricsPort: s.METRICS_PORT === undefined ? undefined : num('METRICS_PORT'),
    tls:
      tlsCert && tlsKey
        ? { certFile: tlsCert, keyFile: tlsKey }
        : selfSigned
          ? { certFile: path.join(selfSignedDir, 'localhost-cert.pem'), keyFile: path.join(selfSignedDir, 'localhost-key.pem'), selfSigned: true }
          : undefined,
    demoEnabled: bool('DEMO_ENABLED') || (!production && s.DEMO_ENABLED === undefined),
    tools: {
      file: str('TOOLS_FILE') ?? './config/tools.json',
      webhookSecret: str('TOOL_WEBHOOK_SECRET'),
      auditArguments: (str('TOOL_AUDIT_ARGUMENTS') as 'full' | 'hash' | undefined) ?? 'hash',
      maxArgumentAttempts: num('TOOL_MAX_ARGUMENT_ATTEMPTS'),
    },
    warnings: misspelledSettings(env),
  };
}
