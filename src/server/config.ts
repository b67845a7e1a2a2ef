/**
 * Configuration (SPEC §2): the environment is parsed once, against a schema, into a
 * frozen object. Anything wrong stops the boot with one line naming the variable.
 */
import { envSchema } from 'env-schema'
import { Type, type Static } from 'typebox'
import { RedisTopologyError, topologyFromEnv, type RedisTopology } from './engine/redis-topology.js'
import { lifecycleEventsOf, type LifecycleEventName } from './events/lifecycle-events.js'
import { ConfigError, PubsubProbeEnv, originsOf, pubsubProbeOf, trustProxyOf, type PubsubProbeConfig } from './config-values.js'
import { PresenceEnv, presenceConfigOf, type PresenceConfig } from './presence-config.js'

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

const EnvSchema = Type.Object({
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 8080 }),
  // Default depends on the mode (below): 127.0.0.1 in dev mode, 0.0.0.0 otherwise.
  HOST: Type.Optional(Type.String({ minLength: 1 })),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  // Pending TCP connections the kernel queues for us (capped by net.core.somaxconn). Node's
  // default, 511, overflows when an ingress reconnects thousands of clients to one instance:
  // the dropped SYNs are retried 1, 3, 7, 15 s later (the avalanche benchmark saw exactly that).
  // /livez and /readyz also on this port, answered by a thread of their own (plugins/probe-port.ts).
  PROBE_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  LISTEN_BACKLOG: Type.Integer({ minimum: 1, maximum: 65535, default: 4096 }),
  NODE_ENV: Type.Optional(Type.String()),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  // Sentinel and Cluster (docs/redis.md); topologyFromEnv checks how they combine.
  REDIS_SENTINELS: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_SENTINEL_NAME: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_SENTINEL_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_CLUSTER_NODES: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_USERNAME: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_PASSWORD: Type.Optional(Type.String({ minLength: 1 })),
  REDIS_TLS: Type.Optional(Type.Boolean()),
  // No braces: the gateway places the hash tags that keep each script in one Cluster slot.
  REDIS_KEY_PREFIX: Type.String({ default: 'rtgw:', maxLength: 64, pattern: '^[^{}]*$' }),
  REDIS_COMMAND_TIMEOUT_MS: Type.Integer({ minimum: 50, maximum: 60000, default: 1000 }),
  ...PubsubProbeEnv,
  JWT_SECRET: Type.Optional(Type.String({ minLength: 32 })),
  JWT_JWKS_URL: Type.Optional(Type.String({ pattern: '^https?://' })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_SESSION_CLAIM: Type.String({ minLength: 1, default: 'sessionId' }),
  // A token without `exp` would be valid forever: refused unless explicitly allowed.
  JWT_REQUIRE_EXP: Type.Boolean({ default: true }),
  JWT_CLOCK_TOLERANCE_SECONDS: Type.Integer({ minimum: 0, maximum: 300, default: 5 }),
  JWT_CACHE_SIZE: Type.Integer({ minimum: 0, maximum: 1000000, default: 10000 }),
  JWT_CACHE_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
  TICKET_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }),
  TICKET_RATE_LIMIT_PER_USER: Type.Integer({ minimum: 1, default: 30 }),
  // Failed authentications only (SPEC §13): valid users behind one IP are never refused for it.
  AUTH_FAILURE_LIMIT_PER_IP: Type.Integer({ minimum: 1, default: 60 }),
  TICKET_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 1000, default: 60000 }),
  ALLOWED_ORIGINS: Type.Optional(Type.String()),
  CORS_ORIGINS: Type.Optional(Type.String()),
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1 })),
  // Admission control (SPEC §13): mean event-loop delay over one sample past which new
  // tickets and upgrades are refused 503 OVERLOADED; utilization 0 disables that check.
  ADMISSION_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, maximum: 60000, default: 500 }),
  ADMISSION_MAX_EVENT_LOOP_UTILIZATION: Type.Number({ minimum: 0, maximum: 1, default: 0 }),
  // Below ~100 ms a sample can hold no event-loop measurement at all, which under-pressure reads as infinite delay.
  ADMISSION_SAMPLE_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 60000, default: 500 }),
  WS_PATH: Type.String({ pattern: '^/[A-Za-z0-9/_.-]*$', default: '/ws' }),
  WS_MAX_PAYLOAD_BYTES: Type.Integer({ minimum: 256, maximum: 16 * 1024 * 1024, default: 65536 }),
  WS_MESSAGE_RATE_PER_SECOND: Type.Integer({ minimum: 1, default: 50 }),
  WS_MESSAGE_BURST: Type.Integer({ minimum: 1, default: 100 }),
  WS_MAX_CHANNELS_PER_CONNECTION: Type.Integer({ minimum: 1, maximum: 10000, default: 100 }),
  WS_MAX_BUFFERED_BYTES: Type.Integer({ minimum: 1024, default: 1024 * 1024 }),
  HEARTBEAT_INTERVAL_MS: Type.Integer({ minimum: 100, maximum: 600000, default: 25000 }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, maximum: 600000, default: 10000 }),
  HISTORY_SIZE: Type.Integer({ minimum: 1, maximum: 1000000, default: 1000 }),
  HISTORY_TTL_SECONDS: Type.Integer({ minimum: 1, default: 3600 }),
  // Bounds Redis memory for unconsumed sends: about this × (WS_MAX_PAYLOAD_BYTES + 200 B) at worst (docs/redis.md).
  INBOUND_MAX_LENGTH: Type.Integer({ minimum: 1000, maximum: 10000000, default: 100000 }),
  // SPEC §12: comma list of events written to <prefix>events, capped at about EVENTS_MAX_LENGTH entries.
  LIFECYCLE_EVENTS: Type.Optional(Type.String()),
  EVENTS_MAX_LENGTH: Type.Integer({ minimum: 1000, maximum: 10000000, default: 100000 }),
  ...PresenceEnv,
  LOG_LEVEL: Type.Unsafe<LogLevel>({ type: 'string', enum: [...LOG_LEVELS], default: 'info' }),
  DEV_SECRET_FILE: Type.String({ minLength: 1, default: '.dev-secret' })
})
type Env = Static<typeof EnvSchema>

export type LogLevel = typeof LOG_LEVELS[number]

export interface JwtConfig {
  /** HS256 shared secret. */
  readonly secret?: string
  /** Remote JWKS for asymmetric algorithms. */
  readonly jwksUrl?: string
  readonly issuer?: string
  readonly audience?: string
  readonly sessionClaim: string
  readonly clockToleranceSeconds: number
  /** Refuse tokens without `exp` (JWT_REQUIRE_EXP). */
  readonly requireExp: boolean
  /** Verified tokens remembered (0 disables) and for how long at most. */
  readonly cacheSize: number
  readonly cacheTtlSeconds: number
  /** True when the secret was generated for development (SPEC §8). */
  readonly devSecret: boolean
}

export interface Config {
  readonly port: number
  readonly host: string
  /** Serve /metrics on this port (same HOST) instead of the main one; undefined: main port. */
  readonly metricsPort?: number
  /** Probes on their own port and thread as well (PROBE_PORT); undefined: main port only. */
  readonly probePort?: number
  /** listen(2) backlog of the main port. */
  readonly listenBacklog: number
  /** Which Redis the engine runs on; undefined: the embedded memory engine. */
  readonly redis?: RedisTopology
  readonly redisKeyPrefix: string
  readonly redisCommandTimeoutMs: number
  /** SPEC §14: PUBSUB_PROBE_INTERVAL_MS, PUBSUB_PROBE_TIMEOUT_MS. */
  readonly pubsubProbe: PubsubProbeConfig
  readonly jwt: JwtConfig
  readonly ticketTtlSeconds: number
  /** Tickets per user, failed authentications per client IP, per window (SPEC §13). */
  readonly ticketRateLimit: { readonly perUser: number, readonly authFailuresPerIp: number, readonly windowMs: number }
  /** `null` allows any Origin; otherwise the exact Origins allowed. */
  readonly allowedOrigins: ReadonlySet<string> | null
  /** Origins whose pages may call POST /ws-ticket and GET /v1/poll; `null`: any. */
  readonly corsOrigins: ReadonlySet<string> | null
  /** Fastify's `trustProxy`: which hops' X-Forwarded-For is believed (SPEC §13). */
  readonly trustProxy: boolean | number | readonly string[]
  readonly admission: { readonly maxEventLoopDelayMs: number, readonly maxEventLoopUtilization: number, readonly sampleIntervalMs: number }
  readonly wsPath: string
  readonly wsMaxPayloadBytes: number
  readonly wsMessageRate: { readonly perSecond: number, readonly burst: number }
  readonly wsMaxChannelsPerConnection: number
  readonly wsMaxBufferedBytes: number
  readonly heartbeatIntervalMs: number
  readonly shutdownGraceMs: number
  readonly historySize: number
  readonly historyTtlSeconds: number
  readonly inboundMaxLength: number
  readonly lifecycleEvents: ReadonlySet<LifecycleEventName>
  readonly eventsMaxLength: number
  /** SPEC §11: presence channels, leave delay, entry TTL, the per-user connection limit. */
  readonly presence: PresenceConfig
  readonly logLevel: LogLevel
  readonly devSecretFile: string
}

/** NODE_ENV values that run development rules (SPEC §2); unset counts as development. */
const DEVELOPMENT_ENVIRONMENTS: ReadonlySet<string> = new Set(['', 'development', 'test'])

export { ConfigError }

interface AjvError { instancePath: string, message?: string, params?: { missingProperty?: string, allowedValues?: unknown[] } }

function describe (error: AjvError): string {
  const variable = error.params?.missingProperty ?? error.instancePath.replace(/^\//, '')
  const allowed = error.params?.allowedValues === undefined ? '' : ` (${error.params.allowedValues.join(', ')})`
  return `${variable} ${error.message ?? 'is invalid'}${allowed}`
}

/**
 * Parses `env` into a frozen Config. `resolveDevSecret` supplies the development
 * secret when no JWT configuration is given outside production (kept out of this
 * module so parsing stays free of file system access).
 */
export function loadConfig (env: NodeJS.ProcessEnv, resolveDevSecret?: () => string): Config {
  let parsed: Env
  try {
    parsed = envSchema<Env>({ schema: structuredClone(EnvSchema), data: { ...env }, env: false, dotenv: false })
  } catch (err) {
    const errors = (err as { errors?: AjvError[] }).errors
    const first = errors?.[0]
    throw new ConfigError(`Invalid configuration: ${first ? describe(first) : (err as Error).message}`)
  }

  // Only these run dev rules: a typo such as NODE_ENV=prod must never give dev mode (SPEC §2).
  const production = !DEVELOPMENT_ENVIRONMENTS.has(parsed.NODE_ENV ?? '')
  const hasJwtConfig = parsed.JWT_SECRET !== undefined || parsed.JWT_JWKS_URL !== undefined
  let redis: RedisTopology | undefined
  try {
    redis = topologyFromEnv(parsed)
  } catch (err) {
    if (!(err instanceof RedisTopologyError)) throw err
    throw new ConfigError(`Invalid configuration: ${err.message}`)
  }
  if (production && redis === undefined) {
    throw new ConfigError(`Invalid configuration: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required when NODE_ENV=${parsed.NODE_ENV ?? ''} (the embedded engine serves one instance only)`)
  }
  if (parsed.METRICS_PORT !== undefined && parsed.METRICS_PORT !== 0 && parsed.METRICS_PORT === parsed.PORT) {
    throw new ConfigError('Invalid configuration: METRICS_PORT must differ from PORT (unset it to serve /metrics on the main port)')
  }
  if (parsed.PROBE_PORT !== undefined && parsed.PROBE_PORT !== 0 && (parsed.PROBE_PORT === parsed.PORT || parsed.PROBE_PORT === parsed.METRICS_PORT)) {
    throw new ConfigError('Invalid configuration: PROBE_PORT must differ from PORT and METRICS_PORT')
  }
  if (production && !hasJwtConfig) {
    throw new ConfigError(`Invalid configuration: JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=${parsed.NODE_ENV ?? ''}`)
  }
  if (production && parsed.ALLOWED_ORIGINS === undefined) {
    throw new ConfigError(`Invalid configuration: ALLOWED_ORIGINS is required when NODE_ENV=${parsed.NODE_ENV ?? ''} (comma list of origins, or * to allow any)`)
  }

  const allowedOrigins = originsOf('ALLOWED_ORIGINS', parsed.ALLOWED_ORIGINS ?? '*')
  const corsOrigins = parsed.CORS_ORIGINS === undefined ? allowedOrigins : originsOf('CORS_ORIGINS', parsed.CORS_ORIGINS)
  const trustProxy = trustProxyOf(parsed.TRUST_PROXY)

  let secret = parsed.JWT_SECRET
  const devSecret = !hasJwtConfig
  if (devSecret) {
    if (resolveDevSecret === undefined) {
      throw new ConfigError('Invalid configuration: JWT_SECRET or JWT_JWKS_URL is required')
    }
    secret = resolveDevSecret()
  }

  return Object.freeze({
    port: parsed.PORT,
    // Dev mode serves a generated secret and an anonymous token mint: never on every interface by default.
    host: parsed.HOST ?? (devSecret ? '127.0.0.1' : '0.0.0.0'),
    metricsPort: parsed.METRICS_PORT,
    probePort: parsed.PROBE_PORT,
    listenBacklog: parsed.LISTEN_BACKLOG,
    redis: redis === undefined ? undefined : Object.freeze(redis),
    redisKeyPrefix: parsed.REDIS_KEY_PREFIX,
    redisCommandTimeoutMs: parsed.REDIS_COMMAND_TIMEOUT_MS,
    pubsubProbe: pubsubProbeOf(parsed),
    jwt: Object.freeze({
      secret,
      jwksUrl: parsed.JWT_JWKS_URL,
      issuer: parsed.JWT_ISSUER,
      audience: parsed.JWT_AUDIENCE,
      sessionClaim: parsed.JWT_SESSION_CLAIM,
      requireExp: parsed.JWT_REQUIRE_EXP,
      clockToleranceSeconds: parsed.JWT_CLOCK_TOLERANCE_SECONDS,
      cacheSize: parsed.JWT_CACHE_SIZE,
      cacheTtlSeconds: parsed.JWT_CACHE_TTL_SECONDS,
      devSecret
    }),
    ticketTtlSeconds: parsed.TICKET_TTL_SECONDS,
    ticketRateLimit: Object.freeze({
      perUser: parsed.TICKET_RATE_LIMIT_PER_USER,
      authFailuresPerIp: parsed.AUTH_FAILURE_LIMIT_PER_IP,
      windowMs: parsed.TICKET_RATE_LIMIT_WINDOW_MS
    }),
    allowedOrigins,
    corsOrigins,
    trustProxy,
    admission: Object.freeze({
      maxEventLoopDelayMs: parsed.ADMISSION_MAX_EVENT_LOOP_DELAY_MS,
      maxEventLoopUtilization: parsed.ADMISSION_MAX_EVENT_LOOP_UTILIZATION,
      sampleIntervalMs: parsed.ADMISSION_SAMPLE_INTERVAL_MS
    }),
    wsPath: parsed.WS_PATH,
    wsMaxPayloadBytes: parsed.WS_MAX_PAYLOAD_BYTES,
    wsMessageRate: Object.freeze({ perSecond: parsed.WS_MESSAGE_RATE_PER_SECOND, burst: parsed.WS_MESSAGE_BURST }),
    wsMaxChannelsPerConnection: parsed.WS_MAX_CHANNELS_PER_CONNECTION,
    wsMaxBufferedBytes: parsed.WS_MAX_BUFFERED_BYTES,
    heartbeatIntervalMs: parsed.HEARTBEAT_INTERVAL_MS,
    shutdownGraceMs: parsed.SHUTDOWN_GRACE_MS,
    historySize: parsed.HISTORY_SIZE,
    historyTtlSeconds: parsed.HISTORY_TTL_SECONDS,
    inboundMaxLength: parsed.INBOUND_MAX_LENGTH,
    lifecycleEvents: lifecycleEventsOf(parsed.LIFECYCLE_EVENTS, (message) => new ConfigError(message)),
    eventsMaxLength: parsed.EVENTS_MAX_LENGTH,
    presence: presenceConfigOf(parsed, (message) => new ConfigError(message)),
    logLevel: parsed.LOG_LEVEL,
    devSecretFile: parsed.DEV_SECRET_FILE
  })
}
