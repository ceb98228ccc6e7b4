/**
 * The JSON schema of every setting the relay reads from the environment.
 * Kept as data so that validation (ajv, with type coercion) and documentation
 * (.env.example) can never drift from each other.
 */
export const envSchema = {
  type: 'object',
  additionalProperties: true,
  properties: {
    NODE_ENV: { type: 'string', enum: ['development', 'production', 'test'] },
    HOST: { type: 'string', minLength: 1 },
    PORT: { type: 'integer', minimum: 0, maximum: 65535 },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] },

    UPSTREAM_PROVIDER: { type: 'string', enum: ['openai', 'cometapi', 'azure', 'compatible', 'simulator'] },
    UPSTREAM_API_KEY: { type: 'string', minLength: 1 },
    OPENAI_API_KEY: { type: 'string', minLength: 1 },
    COMETAPI_KEY: { type: 'string', minLength: 1 },
    AZURE_OPENAI_API_KEY: { type: 'string', minLength: 1 },
    UPSTREAM_BASE_URL: { type: 'string', pattern: '^https?://' },
    REALTIME_API_VERSION: { type: 'string', enum: ['ga', 'beta'] },
    AZURE_OPENAI_ENDPOINT: { type: 'string', pattern: '^https?://' },
    AZURE_OPENAI_RESOURCE: { type: 'string', pattern: '^[A-Za-z0-9-]+$' },
    AZURE_OPENAI_API_VERSION: { type: 'string', minLength: 1 },
    AZURE_OPENAI_DEPLOYMENT: { type: 'string', minLength: 1 },
    OPENAI_ORGANIZATION: { type: 'string', minLength: 1 },
    OPENAI_PROJECT: { type: 'string', minLength: 1 },
    DEFAULT_MODEL: { type: 'string', minLength: 1 },
    ALLOWED_MODELS: { type: 'string' },

    UPSTREAM_CONNECT_TIMEOUT_MS: { type: 'integer', minimum: 100 },
    CLIENT_QUEUE_MAX_FRAMES: { type: 'integer', minimum: 1 },
    CLIENT_QUEUE_MAX_BYTES: { type: 'integer', minimum: 1024 },
    MAX_FRAME_BYTES: { type: 'integer', minimum: 1024 },
    BACKPRESSURE_HIGH_WATER_BYTES: { type: 'integer', minimum: 1024 },
    WS_COMPRESSION: { type: 'boolean' },
    UPSTREAM_MASKING: { type: 'string', enum: ['auto', 'random', 'none'] },
    PING_INTERVAL_MS: { type: 'integer', minimum: 0 },
    IDLE_TIMEOUT_MS: { type: 'integer', minimum: 0 },
    MAX_SESSION_MS: { type: 'integer', minimum: 1000 },
    CANCEL_WAIT_MS: { type: 'integer', minimum: 0 },
    DRAIN_TIMEOUT_MS: { type: 'integer', minimum: 0 },

    DATABASE_URL: { type: 'string', pattern: '^(sqlite:|postgres://|postgresql://)' },
    SPOOL_DIR: { type: 'string', minLength: 1 },
    PRICES_FILE: { type: 'string', minLength: 1 },
    UNPRICED_MODEL_POLICY: { type: 'string', enum: ['refuse', 'fallback'] },
    FALLBACK_PRICE_MODEL: { type: 'string', minLength: 1 },

    RELAY_TOKEN_SECRET: { type: 'string', minLength: 32 },
    RELAY_ADMIN_TOKEN: { type: 'string', minLength: 16 },
    JWT_SECRET: { type: 'string', minLength: 32 },
    JWT_JWKS_URL: { type: 'string', pattern: '^https?://' },
    JWT_ISSUER: { type: 'string', minLength: 1 },
    JWT_AUDIENCE: { type: 'string', minLength: 1 },
    JWT_USER_CLAIM: { type: 'string', minLength: 1 },
    JWT_TENANT_CLAIM: { type: 'string', minLength: 1 },
    EPHEMERAL_KEY_TTL_S: { type: 'integer', minimum: 1 },
    EPHEMERAL_KEY_MAX_TTL_S: { type: 'integer', minimum: 1 },
    MINT_RATE_LIMIT_PER_MINUTE: { type: 'integer', minimum: 1 },
    PROVIDER_MINT_ENABLED: { type: 'boolean' },
    CUT_SESSION_ON_CREDENTIAL_EXPIRY: { type: 'boolean' },

    BUDGET_EXCEEDED_ACTION: { type: 'string', enum: ['refuse', 'close'] },
    DEFAULT_BUDGET_DAILY_USD: { type: 'string', pattern: '^[0-9]+(\\.[0-9]{1,6})?$' },
    DEFAULT_BUDGET_MONTHLY_USD: { type: 'string', pattern: '^[0-9]+(\\.[0-9]{1,6})?$' },
    DEFAULT_BUDGET_TOTAL_USD: { type: 'string', pattern: '^[0-9]+(\\.[0-9]{1,6})?$' },

    REDIS_URL: { type: 'string', pattern: '^rediss?://' },
    REDIS_KEY_PREFIX: { type: 'string', minLength: 1, maxLength: 100 },
    MAX_SESSIONS_PER_USER: { type: 'integer', minimum: 1 },
    MAX_SESSIONS_PER_KEY: { type: 'integer', minimum: 1 },
    CONNECTIONS_PER_MINUTE_PER_USER: { type: 'integer', minimum: 1 },
    HTTP_BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024 },
    CORS_ORIGINS: { type: 'string' },
    METRICS_PORT: { type: 'integer', minimum: 1, maximum: 65535 },

    TLS_CERT_FILE: { type: 'string', minLength: 1 },
    TLS_KEY_FILE: { type: 'string', minLength: 1 },
    TLS_SELF_SIGNED: { type: 'boolean' },
    TLS_SELF_SIGNED_DIR: { type: 'string', minLength: 1 },
    DEMO_ENABLED: { type: 'boolean' },
  },
} as const;

export type EnvKey = keyof typeof envSchema.properties;
