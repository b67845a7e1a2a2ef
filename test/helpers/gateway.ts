import type { FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { ConfigError, loadConfig, type Config } from '../../src/server/config.js'
import type { EngineFactory } from '../../src/server/engine/create-engine.js'
import { TEST_SECRET, userToken } from './tokens.js'

interface Teardown { teardown (fn: () => unknown): void }

export interface Gateway {
  readonly app: FastifyInstance
  readonly config: Config
  readonly baseUrl: string
  readonly wsUrl: string
}

/**
 * In-process gateways share their event loop with the test's own clients and with
 * the TypeScript loader, so the loop delay admission control reads is the test's,
 * not the gateway's: it is off unless a test sets it (test/integration/admission.test.ts).
 * Gateways in child processes (the built server) run the shipped default.
 */
export function testConfig (env: Record<string, string | undefined> = {}): Config {
  return loadConfig({ JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '0', ...env })
}

/** The variables that choose and reach a Redis topology (redis-topology.ts). */
const TOPOLOGY_VARIABLES = new Set(['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD', 'REDIS_CLUSTER_NODES', 'REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'])
const PRODUCTION_NEEDS_REDIS = 'Invalid configuration: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required when NODE_ENV='

/**
 * Whether `env` runs the production rules (SPEC §2), seen the way the gateway acts on
 * them: without a Redis topology it refuses to boot instead of using the embedded engine.
 */
export function followsProductionRules (env: NodeJS.ProcessEnv): boolean {
  const withoutRedis = Object.fromEntries(Object.entries(env).filter(([name]) => !TOPOLOGY_VARIABLES.has(name)))
  try {
    loadConfig(withoutRedis, () => 'a-development-secret-of-thirty-two-characters')
    return false
  } catch (err) {
    if (err instanceof ConfigError && err.message.startsWith(PRODUCTION_NEEDS_REDIS)) return true
    throw err
  }
}

/** A real gateway listening on 127.0.0.1:<random>, closed when the test ends. */
export async function startGateway (t: Teardown, env: Record<string, string | undefined> = {}, options: { logStream?: DestinationStream, waitForEngine?: boolean, engine?: EngineFactory } = {}): Promise<Gateway> {
  const config = testConfig(env)
  const app = await buildApp(config, { logStream: options.logStream, engine: options.engine ?? configuredEngine(config) })
  // Fastify keeps idle keep-alive sockets for 72 s (meant for load balancers); in a test
  // process such a socket keeps the event loop busy, so the root teardown would wait for it.
  app.server.keepAliveTimeout = 1000
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  // The app listens before Redis is connected (by design); most tests want it ready.
  if (app.engine.kind === 'redis' && options.waitForEngine !== false) await eventually(() => app.engine.isReady())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return { app, config, baseUrl: `http://127.0.0.1:${address.port}`, wsUrl: `ws://127.0.0.1:${address.port}${config.wsPath}` }
}

export async function requestTicket (gateway: Gateway, token?: string): Promise<string> {
  const response = await fetch(`${gateway.baseUrl}/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token ?? await userToken()}` }
  })
  if (response.status !== 200) throw new Error(`ticket request failed: ${response.status} ${await response.text()}`)
  return ((await response.json()) as { ticket: string }).ticket
}

/**
 * The status of `GET url`, or 'refused' when nothing answers within 2 s: for gateways
 * in child processes, which may be still starting or already gone.
 */
export async function statusOf (url: string): Promise<number | 'refused'> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
    await response.arrayBuffer()
    return response.status
  } catch {
    return 'refused'
  }
}

/** Polls until `check` holds (readiness follows Redis asynchronously); the timeout only catches hangs. */
export async function eventually (check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
