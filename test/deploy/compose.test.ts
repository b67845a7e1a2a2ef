import t from 'tap'
import { loadConfig } from '../../src/server/config.js'
import { followsProductionRules } from '../helpers/gateway.js'
import { dockerStages, knownEnvNames, readYaml, stageEnv } from './deploy-files.js'

/**
 * docker-compose.yml (issue 5 item 3): Redis and the gateway with healthchecks, and the
 * environment a production gateway needs. Docker does not run here; the healthcheck
 * command itself is run against a real gateway in image-cmd.test.ts.
 */

interface Healthcheck { test: string[], interval: string, timeout: string, retries: number, start_period: string }
interface ComposeService {
  image?: string
  build?: string
  command?: string[]
  depends_on?: Record<string, { condition: string }>
  ports?: string[]
  environment?: Record<string, string>
  healthcheck?: Healthcheck
  stop_grace_period?: string
  read_only?: boolean
  tmpfs?: string[]
  cap_drop?: string[]
  security_opt?: string[]
}

const compose = readYaml('docker-compose.yml') as { name: string, services: Record<string, ComposeService> }
const gateway = compose.services.gateway!
const redis = compose.services.redis!
const stages = dockerStages()
const imageEnv = stageEnv(stages, stages.at(-1)!)

/** `${NAME:-default}` as compose resolves it when NAME is unset. */
function withDefaults (value: string): string {
  return value.replace(/\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}/g, (_match, fallback: string) => fallback)
}

const composeEnv = Object.fromEntries(Object.entries(gateway.environment ?? {}).map(([name, value]) => [name, withDefaults(String(value))]))

/** Compose durations such as `15s` or `1m30s`, in milliseconds. */
function durationMs (value: string): number {
  const parts = [...value.matchAll(/(\d+)(ms|s|m|h)/g)]
  if (parts.map((part) => part[0]).join('') !== value) throw new Error(`unsupported duration ${value}`)
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const
  return parts.reduce((total, part) => total + Number(part[1]) * unit[part[2] as keyof typeof unit], 0)
}

void t.test('Redis and the gateway, the gateway built from this repository', async (t) => {
  t.same(Object.keys(compose.services).sort(), ['gateway', 'redis'])
  t.equal(gateway.build, '.')
  t.match(redis.image, /^redis:7\.\d+/)
  t.same(gateway.depends_on, { redis: { condition: 'service_healthy' } })
  t.same(gateway.ports, [`${imageEnv.PORT}:${imageEnv.PORT}`], 'the container side is the image PORT')
})

void t.test('both services have healthchecks; the gateway asks /readyz with node, as the slim image has no curl', async (t) => {
  t.same(redis.healthcheck?.test, ['CMD', 'redis-cli', 'ping'])
  const test = gateway.healthcheck!.test
  t.same(test.slice(0, 3), ['CMD', 'node', '-e'])
  t.match(test[3], /fetch\('http:\/\/127\.0\.0\.1:' \+ \(process\.env\.PORT \|\| 8080\) \+ '\/readyz'\)/)
  t.notMatch(test[3], /\$/, 'no $ for compose to interpolate')
  for (const check of [redis.healthcheck!, gateway.healthcheck!]) {
    t.ok(durationMs(check.timeout) < durationMs(check.interval))
    t.ok(check.retries >= 3)
    t.ok(durationMs(check.start_period) > 0)
  }
})

void t.test('the environment names are variables the gateway knows, and make a valid production configuration', async (t) => {
  const { schema, example } = knownEnvNames()
  t.same(Object.keys(composeEnv).sort(), ['ALLOWED_ORIGINS', 'JWT_SECRET', 'LOG_LEVEL', 'REDIS_URL', 'SHUTDOWN_GRACE_MS'])
  for (const name of Object.keys(composeEnv)) {
    t.ok(schema.has(name) && example.has(name), `${name} is known`)
  }
  const config = loadConfig({ ...imageEnv, ...composeEnv })
  t.equal(followsProductionRules({ ...imageEnv, ...composeEnv }), true)
  t.strictSame(config.redis, { kind: 'standalone', url: 'redis://redis:6379' })
  t.equal(config.jwt.devSecret, false)
  t.same([...config.allowedOrigins!], ['http://localhost:8080', 'http://localhost:3000'])
  t.equal(withDefaults('${X:-a-b}'), 'a-b')
})

void t.test('docker compose stop waits for the drain', async (t) => {
  const graceMs = durationMs(gateway.stop_grace_period!)
  t.equal(graceMs, 15_000)
  // Docker's default is 10 s: the drain (SHUTDOWN_GRACE_MS) plus main.ts's 1 s hard exit must fit.
  t.ok(graceMs > Number(composeEnv.SHUTDOWN_GRACE_MS) + 1000)
  t.equal(durationMs('1m30s'), 90_000)
})

void t.test('the gateway container is hardened like the Kubernetes pods', async (t) => {
  t.equal(gateway.read_only, true)
  t.same(gateway.tmpfs, ['/tmp'])
  t.same(gateway.cap_drop, ['ALL'])
  t.same(gateway.security_opt, ['no-new-privileges:true'])
})
