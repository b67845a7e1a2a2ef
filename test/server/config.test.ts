import t from 'tap'
import { ConfigError, loadConfig, type Config } from '../../src/server/config.js'
import { followsProductionRules } from '../helpers/gateway.js'
import { TEST_SECRET } from '../helpers/tokens.js'

/** REDIS_URL as the configuration keeps it: the standalone topology's URL. */
const standaloneUrl = (config: Config): string | undefined => config.redis?.kind === 'standalone' ? config.redis.url : undefined

/** loadConfig's error for `env`, or a failure when it does not throw a ConfigError. */
function configError (env: NodeJS.ProcessEnv, resolveDevSecret?: () => string): ConfigError {
  try {
    loadConfig(env, resolveDevSecret)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw new Error(`expected a ConfigError, got ${String(err)}`)
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`)
}

void t.test('defaults of every §2 variable', async (t) => {
  const config = loadConfig({ JWT_SECRET: TEST_SECRET })
  t.equal(config.port, 8080)
  t.equal(config.host, '0.0.0.0')
  t.equal(config.listenBacklog, 4096)
  t.equal(followsProductionRules({ JWT_SECRET: TEST_SECRET }), false)
  t.equal(standaloneUrl(config), undefined, 'REDIS_URL unset: embedded engine')
  t.equal(config.redis, undefined, 'no Redis topology at all')
  t.equal(config.redisKeyPrefix, 'rtgw:')
  t.same(config.jwt, {
    secret: TEST_SECRET,
    jwksUrl: undefined,
    issuer: undefined,
    audience: undefined,
    sessionClaim: 'sessionId',
    clockToleranceSeconds: 5,
    cacheSize: 10000,
    cacheTtlSeconds: 60,
    devSecret: false,
    requireExp: true
  })
  t.equal(config.ticketTtlSeconds, 30)
  t.same(config.ticketRateLimit, { perUser: 30, authFailuresPerIp: 60, windowMs: 60000 })
  t.equal(config.allowedOrigins, null, 'ALLOWED_ORIGINS defaults to * outside production')
  t.equal(config.corsOrigins, null, 'CORS_ORIGINS defaults to ALLOWED_ORIGINS')
  t.equal(config.trustProxy, false, 'TRUST_PROXY unset: the TCP peer is the client')
  t.same(config.admission, { maxEventLoopDelayMs: 500, maxEventLoopUtilization: 0, sampleIntervalMs: 500 })
  t.equal(config.wsPath, '/ws')
  t.equal(config.wsMaxPayloadBytes, 65536)
  t.equal(config.heartbeatIntervalMs, 25000)
  t.equal(config.shutdownGraceMs, 10000)
  t.equal(config.historySize, 1000)
  t.equal(config.historyTtlSeconds, 3600)
  t.equal(config.logLevel, 'info')
})

void t.test('set values are parsed into their types', async (t) => {
  const config = loadConfig({
    PORT: '9090',
    HOST: '127.0.0.1',
    REDIS_URL: 'rediss://cache.internal:6380/2',
    REDIS_KEY_PREFIX: 'gw1:',
    JWT_SECRET: TEST_SECRET,
    JWT_JWKS_URL: 'https://idp.example.com/.well-known/jwks.json',
    JWT_ISSUER: 'https://idp.example.com/',
    JWT_AUDIENCE: 'realtime',
    JWT_SESSION_CLAIM: 'sid',
    TICKET_TTL_SECONDS: '15',
    WS_PATH: '/realtime/v1',
    WS_MAX_PAYLOAD_BYTES: '1024',
    HEARTBEAT_INTERVAL_MS: '5000',
    SHUTDOWN_GRACE_MS: '0',
    HISTORY_SIZE: '50',
    HISTORY_TTL_SECONDS: '60',
    LOG_LEVEL: 'debug',
    JWT_CACHE_SIZE: '0',
    JWT_CACHE_TTL_SECONDS: '30'
  })
  t.equal(config.port, 9090)
  t.equal(config.host, '127.0.0.1')
  t.equal(standaloneUrl(config), 'rediss://cache.internal:6380/2')
  t.strictSame(config.redis, { kind: 'standalone', url: 'rediss://cache.internal:6380/2' })
  t.equal(config.redisKeyPrefix, 'gw1:')
  t.same(config.jwt, {
    secret: TEST_SECRET,
    jwksUrl: 'https://idp.example.com/.well-known/jwks.json',
    issuer: 'https://idp.example.com/',
    audience: 'realtime',
    sessionClaim: 'sid',
    clockToleranceSeconds: 5,
    cacheSize: 0,
    cacheTtlSeconds: 30,
    devSecret: false,
    requireExp: true
  })
  t.equal(config.ticketTtlSeconds, 15)
  t.equal(config.wsPath, '/realtime/v1')
  t.equal(config.wsMaxPayloadBytes, 1024)
  t.equal(config.heartbeatIntervalMs, 5000)
  t.equal(config.shutdownGraceMs, 0)
  t.equal(config.historySize, 50)
  t.equal(config.historyTtlSeconds, 60)
  t.equal(config.logLevel, 'debug')
})

void t.test('TRUST_PROXY forms, and CORS_ORIGINS apart from ALLOWED_ORIGINS', async (t) => {
  const trust = (value: string): unknown => loadConfig({ JWT_SECRET: TEST_SECRET, TRUST_PROXY: value }).trustProxy
  t.equal(trust('true'), true)
  t.equal(trust('false'), false)
  t.equal(trust('2'), 2, 'a hop count')
  t.same(trust('10.0.0.0/8, 192.168.1.7,fd00::/8'), ['10.0.0.0/8', '192.168.1.7', 'fd00::/8'])
  for (const [value, message] of [
    ['0', 'TRUST_PROXY hop count must be between 1 and 32'],
    ['proxy.internal', 'TRUST_PROXY entry "proxy.internal" must be an IP address or CIDR (or use true, false or a hop count)'],
    [' , ', 'TRUST_PROXY must be true, false, a hop count or a comma list of IPs/CIDRs']
  ] as const) {
    t.equal(configError({ JWT_SECRET: TEST_SECRET, TRUST_PROXY: value }).message, `Invalid configuration: ${message}`)
  }
  const split = loadConfig({ JWT_SECRET: TEST_SECRET, ALLOWED_ORIGINS: 'https://app.example.com', CORS_ORIGINS: 'https://app.example.com,https://admin.example.com' })
  t.same([...split.allowedOrigins ?? []], ['https://app.example.com'])
  t.same([...split.corsOrigins ?? []], ['https://app.example.com', 'https://admin.example.com'])
  t.same([...loadConfig({ JWT_SECRET: TEST_SECRET, ALLOWED_ORIGINS: 'https://app.example.com' }).corsOrigins ?? []], ['https://app.example.com'], 'CORS follows ALLOWED_ORIGINS by default')
  t.match(configError({ JWT_SECRET: TEST_SECRET, CORS_ORIGINS: 'https://app.example.com/' }).message, /CORS_ORIGINS entry "https:\/\/app.example.com\/" must be \*/)
})

void t.test('dev mode only for NODE_ENV unset, development or test; then HOST defaults to 127.0.0.1', async (t) => {
  for (const nodeEnv of [undefined, 'development', 'test']) {
    const dev = loadConfig({ NODE_ENV: nodeEnv }, () => 'generated-development-secret-of-32-chars!')
    t.equal(dev.jwt.devSecret, true, `NODE_ENV=${String(nodeEnv)}: dev secret`)
    t.equal(followsProductionRules({ NODE_ENV: nodeEnv }), false)
    t.equal(dev.host, '127.0.0.1', 'dev mode listens on loopback by default')
  }
  t.equal(loadConfig({ NODE_ENV: 'development', HOST: '0.0.0.0' }, () => 'generated-development-secret-of-32-chars!').host, '0.0.0.0', 'an explicit HOST wins')
  for (const nodeEnv of ['prod', 'staging', 'Production', 'production ']) {
    t.equal(configError({ NODE_ENV: nodeEnv }, () => 'dev').message,
      `Invalid configuration: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required when NODE_ENV=${nodeEnv} (the embedded engine serves one instance only)`,
      `NODE_ENV=${JSON.stringify(nodeEnv)} follows the production rules`)
    t.equal(configError({ NODE_ENV: nodeEnv, REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: '*' }, () => 'dev').message,
      `Invalid configuration: JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=${nodeEnv}`, 'never a generated secret')
  }
  const staging = loadConfig({ NODE_ENV: 'staging', REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: '*', JWT_SECRET: TEST_SECRET })
  t.equal(followsProductionRules({ NODE_ENV: 'staging', REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: '*', JWT_SECRET: TEST_SECRET }), true)
  t.equal(staging.host, '0.0.0.0')
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET }).host, '0.0.0.0', 'with a JWT config (not dev mode) HOST defaults to every interface')
})

void t.test('invalid values throw a one-line ConfigError naming the variable', async (t) => {
  const cases: Array<[NodeJS.ProcessEnv, string, RegExp]> = [
    [{ PORT: 'abc' }, 'PORT', /integer/],
    [{ PORT: '70000' }, 'PORT', /65535/],
    [{ TICKET_TTL_SECONDS: '0' }, 'TICKET_TTL_SECONDS', />= 1/],
    [{ REDIS_URL: 'http://x' }, 'REDIS_URL', /rediss\?:\/\//],
    [{ REDIS_KEY_PREFIX: 'gw{1}:' }, 'REDIS_KEY_PREFIX', /pattern/],
    [{ REDIS_TLS: 'yes', REDIS_CLUSTER_NODES: 'a:1' }, 'REDIS_TLS', /boolean/],
    [{ REDIS_SENTINELS: '' }, 'REDIS_SENTINELS', /fewer than 1/],
    [{ REDIS_SENTINELS: 'sentinel-1', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS', /entry "sentinel-1" must be host:port/],
    [{ REDIS_SENTINELS: 's1:26379,s2:0', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS', /entry "s2:0" must be host:port/],
    [{ REDIS_SENTINELS: 's1:26379,s1:26379', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS', /lists s1:26379 twice/],
    [{ REDIS_SENTINELS: ' , ', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS', /at least one host:port/],
    [{ REDIS_SENTINELS: 's1:26379' }, 'REDIS_SENTINEL_NAME', /required with REDIS_SENTINELS/],
    [{ REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINEL_NAME', /REDIS_SENTINELS is not/],
    [{ REDIS_URL: 'redis://a', REDIS_SENTINEL_PASSWORD: 'p' }, 'REDIS_SENTINEL_PASSWORD', /only applies to a Sentinel topology/],
    [{ REDIS_CLUSTER_NODES: 'node-1:7000,node-2:70000' }, 'REDIS_CLUSTER_NODES', /entry "node-2:70000" must be host:port/],
    [{ REDIS_CLUSTER_NODES: '::1:7000' }, 'REDIS_CLUSTER_NODES', /IPv6 as \[address\]:port/],
    [{ REDIS_URL: 'redis://a', REDIS_CLUSTER_NODES: 'b:7000' }, 'REDIS_CLUSTER_NODES', /cannot be combined with REDIS_URL: configure exactly one Redis topology/],
    [{ REDIS_URL: 'redis://a', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS', /cannot be combined with REDIS_URL/],
    [{ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'b:7000' }, 'REDIS_CLUSTER_NODES', /cannot be combined with REDIS_SENTINELS/],
    [{ REDIS_URL: 'redis://a', REDIS_PASSWORD: 'p' }, 'REDIS_PASSWORD', /cannot be combined with REDIS_URL: put credentials in the URL/],
    [{ REDIS_URL: 'redis://a', REDIS_TLS: 'true' }, 'REDIS_TLS', /use rediss:\/\/ for TLS/],
    [{ REDIS_USERNAME: 'gw', REDIS_PASSWORD: 'p' }, 'REDIS_USERNAME', /no Redis topology is/],
    [{ REDIS_CLUSTER_NODES: 'b:7000', REDIS_USERNAME: 'gw' }, 'REDIS_USERNAME', /without REDIS_PASSWORD/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /./],
    [{ JWT_SECRET: 'too-short-secret' }, 'JWT_SECRET', /32/],
    [{ WS_PATH: 'nope' }, 'WS_PATH', /pattern/],
    [{ ALLOWED_ORIGINS: 'https://app.example.com/path' }, 'ALLOWED_ORIGINS', /no path/],
    [{ ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:3000/' }, 'ALLOWED_ORIGINS', /no path/]
  ]
  for (const [env, variable, detail] of cases) {
    const error = configError({ JWT_SECRET: TEST_SECRET, ...env })
    t.equal(error.name, 'ConfigError', `${JSON.stringify(env)}: ConfigError`)
    t.notMatch(error.message, /\n/, `${JSON.stringify(env)}: one line`)
    t.match(error.message, new RegExp(`^Invalid configuration: ${variable}\\b`), `${JSON.stringify(env)}: names ${variable} first`)
    t.match(error.message, detail, `${JSON.stringify(env)}: says what is wrong`)
  }
})

void t.test('production requirements', async (t) => {
  t.equal(
    configError({ NODE_ENV: 'production' }).message,
    'Invalid configuration: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required when NODE_ENV=production (the embedded engine serves one instance only)'
  )
  for (const redis of [{ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }, { REDIS_CLUSTER_NODES: 'n:7000' }]) {
    const env = { NODE_ENV: 'production', JWT_SECRET: TEST_SECRET, ALLOWED_ORIGINS: '*', ...redis }
    const production = loadConfig(env)
    t.equal(followsProductionRules(env), true, `${Object.keys(redis)[0]!} satisfies production`)
    t.equal(standaloneUrl(production), undefined)
  }
  // Even with a dev-secret resolver, production never falls back to a generated secret.
  t.equal(
    configError({ NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: 'https://app.example.com' }, () => 'dev').message,
    'Invalid configuration: JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=production'
  )
  t.equal(
    configError({ NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1', JWT_SECRET: TEST_SECRET }).message,
    'Invalid configuration: ALLOWED_ORIGINS is required when NODE_ENV=production (comma list of origins, or * to allow any)'
  )

  const env = {
    NODE_ENV: 'production',
    REDIS_URL: 'redis://127.0.0.1:1',
    JWT_JWKS_URL: 'https://idp.example.com/jwks.json',
    ALLOWED_ORIGINS: '*'
  }
  const config = loadConfig(env)
  t.equal(followsProductionRules(env), true)
  t.equal(config.jwt.devSecret, false)
  t.equal(config.jwt.secret, undefined)
  t.equal(config.allowedOrigins, null, 'an explicit * is accepted in production')
})

void t.test('ALLOWED_ORIGINS parsing', async (t) => {
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET, ALLOWED_ORIGINS: '*' }).allowedOrigins, null)
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET, ALLOWED_ORIGINS: 'https://a.example.com,*' }).allowedOrigins, null, '* anywhere in the list allows any')

  const origins = loadConfig({ JWT_SECRET: TEST_SECRET, ALLOWED_ORIGINS: ' https://app.example.com , http://localhost:3000,,' }).allowedOrigins
  t.ok(origins instanceof Set, 'a Set')
  t.same([...(origins ?? [])].sort(), ['http://localhost:3000', 'https://app.example.com'], 'trimmed, empty entries dropped')
  t.equal(origins?.has('https://app.example.com.evil.com'), false)
})

void t.test('dev secret', async (t) => {
  let calls = 0
  const config = loadConfig({}, () => { calls += 1; return 'generated-dev-secret' })
  t.equal(calls, 1)
  t.equal(config.jwt.devSecret, true)
  t.equal(config.jwt.secret, 'generated-dev-secret')

  const explicit = loadConfig({ JWT_SECRET: TEST_SECRET }, () => { calls += 1; return 'unused' })
  t.equal(calls, 1, 'the resolver is not called when JWT config is set')
  t.equal(explicit.jwt.devSecret, false)

  const jwksOnly = loadConfig({ JWT_JWKS_URL: 'https://idp.example.com/jwks.json' }, () => { calls += 1; return 'unused' })
  t.equal(calls, 1, 'a JWKS URL alone is JWT config')
  t.equal(jwksOnly.jwt.devSecret, false)

  t.equal(configError({}).message, 'Invalid configuration: JWT_SECRET or JWT_JWKS_URL is required', 'no JWT config and no resolver')
})

void t.test('the returned config is frozen', async (t) => {
  const config = loadConfig({ JWT_SECRET: TEST_SECRET })
  t.ok(Object.isFrozen(config))
  t.ok(Object.isFrozen(config.jwt))
  t.ok(Object.isFrozen(config.ticketRateLimit))
  t.ok(Object.isFrozen(config.wsMessageRate))
  t.throws(() => { (config as { port: number }).port = 1 }, TypeError)
  t.equal(config.port, 8080)
})

void t.test('METRICS_PORT: unset by default, parsed when set, never the main port', async (t) => {
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET }).metricsPort, undefined, 'unset: /metrics on the main port')
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET, METRICS_PORT: '9464' }).metricsPort, 9464)
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET, PORT: '0', METRICS_PORT: '0' }).metricsPort, 0, '0 (any free port) twice is allowed')
  t.match(configError({ JWT_SECRET: TEST_SECRET, METRICS_PORT: 'metrics' }).message, /^Invalid configuration: METRICS_PORT must be integer/)
  t.match(configError({ JWT_SECRET: TEST_SECRET, METRICS_PORT: '70000' }).message, /^Invalid configuration: METRICS_PORT .*65535/)
  t.equal(
    configError({ JWT_SECRET: TEST_SECRET, PORT: '9000', METRICS_PORT: '9000' }).message,
    'Invalid configuration: METRICS_PORT must differ from PORT (unset it to serve /metrics on the main port)'
  )
})

void t.test('Redis topologies: Sentinel and Cluster parse into the engine topology', async (t) => {
  const sentinel = loadConfig({
    JWT_SECRET: TEST_SECRET,
    REDIS_SENTINELS: ' sentinel-0.redis:26379 , 10.0.0.7:26380,[fd00::7]:26381 ',
    REDIS_SENTINEL_NAME: 'gateway-master',
    REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    REDIS_USERNAME: 'gateway',
    REDIS_PASSWORD: 'data-secret',
    REDIS_TLS: 'true'
  })
  t.strictSame(sentinel.redis, {
    kind: 'sentinel',
    sentinels: [{ host: 'sentinel-0.redis', port: 26379 }, { host: '10.0.0.7', port: 26380 }, { host: 'fd00::7', port: 26381 }],
    name: 'gateway-master',
    sentinelPassword: 'sentinel-secret',
    username: 'gateway',
    password: 'data-secret',
    tls: true
  })
  t.equal(standaloneUrl(sentinel), undefined)
  t.ok(Object.isFrozen(sentinel.redis))

  t.strictSame(loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' }).redis,
    { kind: 'sentinel', sentinels: [{ host: 's', port: 26379 }], name: 'm', tls: false }, 'no auth, no TLS by default')

  t.strictSame(loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_CLUSTER_NODES: 'redis-0:7000,redis-1:7001', REDIS_PASSWORD: 'p', REDIS_TLS: 'false' }).redis,
    { kind: 'cluster', nodes: [{ host: 'redis-0', port: 7000 }, { host: 'redis-1', port: 7001 }], password: 'p', tls: false })
  t.strictSame(loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_CLUSTER_NODES: 'redis-0:7000', REDIS_TLS: 'true' }).redis,
    { kind: 'cluster', nodes: [{ host: 'redis-0', port: 7000 }], tls: true })

  t.strictSame(loadConfig({ JWT_SECRET: TEST_SECRET, REDIS_URL: 'rediss://gateway:s3cret@cache.internal:6380' }).redis,
    { kind: 'standalone', url: 'rediss://gateway:s3cret@cache.internal:6380' }, 'standalone: TLS and credentials stay in the URL')
})
