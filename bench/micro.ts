/**
 * CPU per operation of the pieces of the POST /ws-ticket hot path, in isolation
 * (docs/benchmarks.md, "Where the CPU goes"):
 *
 *   npx tsx bench/micro.ts
 *
 * Logging (the gateway's pino options, one child logger + one line per request),
 * ticket minting, and the Redis client (the gateway's ioredis options against a
 * redis-server started here on a free port and stopped by pid): the Redis work of a
 * ticket before and since commit eed50e1 against alternatives. CPU is this process's
 * (all threads); Redis CPU is read from /proc. JWT verification: bench/jwt-verify.ts.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { createRequire } from 'node:module'
import { setImmediate as nextTurn } from 'node:timers/promises'
import pino from 'pino'
import { Redis } from 'ioredis'
import { RedisServer } from '../test/helpers/redis-server.js'
import { loggerOptions } from '../src/server/logging.js'
import { encodeTicketRecord } from '../src/server/engine/engine.js'
import { procCpuMicros } from './lib/child.js'
import { measureAsync, measureSync, type Measurement } from './lib/measure.js'
import { table } from './lib/setup.js'

const rows: string[][] = []
const add = (group: string, result: Measurement, extra = ''): void => {
  rows.push([group, result.name, String(result.operations), result.cpuMicros.toFixed(2), extra])
  process.stderr.write(`${group}: ${result.name} ${result.cpuMicros.toFixed(2)} µs\n`)
}

// --- Ticket minting (TicketService.issue without the engine) -------------------
add('ticket', measureSync('randomBytes(32).toString(base64url)', () => randomBytes(32).toString('base64url')))
add('ticket', measureSync('sha256(ticket) base64url (hashTicket)', (i) => createHash('sha256').update(`ticket-${i}`).digest('base64url')))
add('ticket', measureSync('encodeTicketRecord (JSON)', (i) => encodeTicketRecord({ sub: `user-${i}`, sessionId: 's', issuedAt: i, expiresAt: i + 30000, channels: [] })))
add('ticket', measureSync('new Date(expiresAt).toISOString()', (i) => new Date(1_800_000_000_000 + i).toISOString()))
add('request', measureSync('randomUUID() (request id)', () => randomUUID()))

// --- Logging: one child logger + one "request completed" line per request --------
// The destinations are what pino builds for stdout by default (SonicBoom, async
// writes, no minimum length) pointed at /dev/null, and a buffered variant.
const fakeRequest = (i: number): object => ({ method: 'POST', url: '/ws-ticket', id: `0f5d3c2e-7c1b-4f7e-9d7e-${String(i).padStart(12, '0')}` })
const fakeReply = { statusCode: 200 }
function logLine (logger: pino.Logger, i: number): void {
  const child = logger.child({ traceId: `0f5d3c2e-7c1b-4f7e-9d7e-${i}` })
  child.info({ event: 'http.request', req: fakeRequest(i), res: fakeReply, durationMs: 1.3 }, 'request completed')
}
const gatewayOptions = loggerOptions('info') as pino.LoggerOptions
const withoutRedact: pino.LoggerOptions = { ...gatewayOptions }
delete withoutRedact.redact
// The redaction paths before commit eed50e1, wildcards included, for comparison.
const wildcardRedact: pino.LoggerOptions = {
  ...gatewayOptions,
  redact: { paths: ['req.headers.authorization', 'headers.authorization', 'authorization', 'ticket', '*.ticket', 'token', '*.token'], censor: '[redacted]' }
}
const loggers: Array<[string, pino.Logger]> = [
  ['gateway options (redact + serializers), default stdout-like destination', pino(gatewayOptions, pino.destination({ dest: '/dev/null', sync: false }))],
  ['gateway options without redact', pino(withoutRedact, pino.destination({ dest: '/dev/null', sync: false }))],
  ['gateway options with the wildcard redact paths used before eed50e1', pino(wildcardRedact, pino.destination({ dest: '/dev/null', sync: false }))],
  ['gateway options, destination buffered (minLength 4096)', pino(gatewayOptions, pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }))],
  ['gateway options, sync destination (a write(2) per line)', pino(gatewayOptions, pino.destination({ dest: '/dev/null', sync: true }))]
]
// The event loop turns between requests, so asynchronous writes complete as in a server.
const baseline = await measureAsync('await setImmediate (baseline, subtracted)', async () => { await nextTurn() })
add('logging', baseline)
for (const [name, logger] of loggers) {
  const result = await measureAsync(name, async (i) => { logLine(logger, i); await nextTurn() })
  add('logging', { ...result, cpuMicros: result.cpuMicros - baseline.cpuMicros }, 'baseline subtracted')
}
const [, gatewayLogger] = loggers[0]!
add('logging', measureSync('child({ traceId }) only (Fastify makes one per request)', (i) => gatewayLogger.child({ traceId: `t-${i}` })))
add('logging', measureSync('child({ connectionId }) of a request child (ws.ts, per connection)', (i) => gatewayLogger.child({ traceId: `t-${i}` }).child({ connectionId: `c-${i}` })))

// --- Redis client -----------------------------------------------------------------
// The rate-limit script of @fastify/rate-limit, loaded from the package itself.
const require = createRequire(import.meta.url)
interface RateLimitStore { incr (key: string, cb: (err: Error | null, result: { current: number, ttl: number } | null) => void, timeWindow: number, max: number): void }
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis, key: string) => RateLimitStore

/** One command for the whole ticket: the user's limit and the ticket itself. */
const COMBINED_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if count > tonumber(ARGV[2]) then return {count, redis.call('PTTL', KEYS[1]), 0} end
redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
return {count, -1, 1}`

const redis = await RedisServer.start()
try {
  const redisPid = redis.pid!
  const client = (autoPipelining: boolean): Redis => new Redis(redis.url, {
    enableOfflineQueue: true, maxRetriesPerRequest: 0, commandTimeout: 1000, enableAutoPipelining: autoPipelining, lazyConnect: false
  })
  const piped = client(true)
  const plain = client(false)
  await Promise.all([piped.ping(), plain.ping()])
  piped.defineCommand('ticketCombined', { numberOfKeys: 2, lua: COMBINED_SCRIPT })
  const combined = piped as Redis & { ticketCombined (user: string, ticket: string, windowMs: number, max: number, value: string, ttl: number): Promise<[number, number, number]> }
  const store = new RedisStore(false, false, piped, 'rtgw:ratelimit:POST/ws-ticket-')
  const incr = async (key: string): Promise<void> => {
    await new Promise<void>((resolve, reject) => { store.incr(key, (err) => { if (err) reject(err); else resolve() }, 60_000, 1_000_000_000) })
  }
  const value = encodeTicketRecord({ sub: 'bench-user-00001', sessionId: 'bench-session-00001', issuedAt: Date.now(), expiresAt: Date.now() + 30_000, channels: [] })
  const key = (i: number): string => `rtgw:ticket:${createHash('sha256').update(`t${i}`).digest('base64url')}`

  const withRedis = async (name: string, fn: (i: number) => Promise<unknown>): Promise<void> => {
    const before = procCpuMicros(redisPid)
    const result = await measureAsync(name, fn, 50, 40_000, 2000)
    // Redis CPU is for the measured and warm-up operations together (≤ 2000 + operations).
    const redisMicros = (procCpuMicros(redisPid) - before) / (result.operations + Math.min(2000, result.operations))
    add('redis (client CPU)', result, `redis-server ≈ ${redisMicros.toFixed(1)} µs/op`)
  }
  await withRedis('SET ticket EX, auto-pipelining (storeTicket as configured)', async (i) => await piped.set(key(i), value, 'EX', 90))
  await withRedis('SET ticket EX, no auto-pipelining', async (i) => await plain.set(key(i), value, 'EX', 90))
  await withRedis('rate-limit script (@fastify/rate-limit RedisStore.incr), one key', async (i) => { await incr(`user:bench-user-${i % 1000}`) })
  await withRedis('before eed50e1: limit(ip) -> limit(user) -> SET, sequential', async (i) => {
    await incr('ip:127.0.0.1')
    await incr(`user:bench-user-${i % 1000}`)
    await piped.set(key(i), value, 'EX', 90)
  })
  await withRedis('since eed50e1: limit(user) and SET together (auto-pipelined)', async (i) => await Promise.all([
    incr(`user:bench-user-${i % 1000}`),
    piped.set(key(i), value, 'EX', 90)
  ]))
  await withRedis('one Lua script: user limit + SET as one command', async (i) => await combined.ticketCombined(
    `rtgw:rl:user:bench-user-${i % 1000}`, key(i), 60_000, 1_000_000_000, value, 90))
  await withRedis('explicit pipeline (no MULTI): INCR + SET in one exec', async (i) => await piped.pipeline()
    .incr(`rtgw:rl2:user:bench-user-${i % 1000}`).set(key(i), value, 'EX', 90).exec())
  await Promise.all([piped.quit(), plain.quit()])
} finally {
  await redis.stop()
}

console.log(`# Hot-path micro-benchmarks — node ${process.version}\n`)
console.log(table(['group', 'operation', 'operations', 'CPU µs/op', 'note'], rows, 2))
