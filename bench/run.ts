/**
 * npm run bench — POST /ws-ticket against a bare Fastify route, and full WebSocket
 * connects, on this machine, loopback only. See docs/benchmarks.md.
 *
 *   npm run bench                              # default run (~1 min)
 *   npm run bench -- --duration 5 --rounds 1   # shorter
 *   npm run bench -- --skip-fanout             # without the fan-out phase (bench/fanout.ts)
 *   npm run bench -- avalanche [options]       # only the reconnect avalanche (bench/avalanche.ts), not run by default
 *   npm run bench -- presence [--members N]    # only the presence benchmark (bench/presence.ts), not run by default
 *
 * Where the gateway's CPU goes: bench/profile.ts and bench/micro.ts.
 *
 * Everything it starts (redis-server on a free port, two server children) is
 * stopped by pid at the end. The shared Redis on 6379 is never touched.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild } from './lib/child.js'
import { loadPhase, type PhaseResult } from './lib/load.js'
import { connectPhase } from './lib/connects.js'
import { runFanout, writeFanoutResult } from './fanout.js'
import { phaseTable } from './lib/report.js'
import { WS_PATH, gatewayEnv, gitRevision, log, median, mintTokens } from './lib/setup.js'

// `avalanche` as the first argument runs that benchmark alone (minutes at full scale,
// so the default run leaves it out); its options are its own.
if (process.argv[2] === 'avalanche') {
  const { runAvalanche } = await import('./avalanche.js')
  process.exit(await runAvalanche(process.argv.slice(3)))
}
if (process.argv[2] === 'presence') {
  const { runPresence } = await import('./presence.js')
  process.exit(await runPresence(process.argv.slice(3)))
}

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '6' },
    warmup: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    users: { type: 'string', default: '1000' },
    connects: { type: 'string', default: '2000' },
    'connect-concurrency': { type: 'string', default: '50' },
    'log-level': { type: 'string', default: 'info' },
    'jwt-cache-size': { type: 'string', default: '10000' },
    'fanout-subscribers': { type: 'string', default: '1000' },
    'skip-fanout': { type: 'boolean', default: false }
  }
})

function bounded (name: string, value: string | undefined, min: number, max: number): number {
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new Error(`--${name} must be an integer in [${min}, ${max}]`)
  return parsed
}

const DURATION_S = bounded('duration', args.duration, 1, 30)
const WARMUP_S = bounded('warmup', args.warmup, 1, 15)
const ROUNDS = bounded('rounds', args.rounds, 1, 5)
const CONNECTIONS = bounded('connections', args.connections, 1, 1000)
const USERS = bounded('users', args.users, 1, 100_000)
const CONNECTS = bounded('connects', args.connects, 1, 20_000)
const CONNECT_CONCURRENCY = bounded('connect-concurrency', args['connect-concurrency'], 1, 500)
const CONNECT_WARMUP = 3000
const LOG_LEVEL = args['log-level'] ?? 'info'
// 0 measures every request paying a full JWT verification (no verified-token cache).
const JWT_CACHE_SIZE = bounded('jwt-cache-size', args['jwt-cache-size'], 0, 1_000_000)
const FANOUT_SUBSCRIBERS = bounded('fanout-subscribers', args['fanout-subscribers'], 1, 5000)
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

const started = performance.now()
const children: ServerChild[] = []
let redis: RedisServer | undefined

async function cleanup (): Promise<void> {
  await Promise.all(children.map(async (child) => { await child.stop() }))
  await redis?.stop()
}

process.once('SIGINT', () => { void cleanup().finally(() => { process.exit(130) }) })

try {
  const revision = gitRevision()
  const loadBefore = loadAverage()
  log(`realtime-gateway bench at ${revision}: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${loadBefore}`)
  redis = await RedisServer.start()
  const redisPid = redis.pid
  if (redisPid === undefined) throw new Error('redis-server has no pid')
  log(`redis-server pid ${redisPid} on 127.0.0.1:${redis.port}`)

  const tokens = await mintTokens(USERS)
  const bare = await ServerChild.start('bare', 'bare.ts', {})
  children.push(bare)
  const gateway = await ServerChild.start('gateway', 'gateway.ts', gatewayEnv(redis.url, LOG_LEVEL, JWT_CACHE_SIZE))
  children.push(gateway)
  log(`bare pid ${bare.pid} port ${bare.port}; gateway pid ${gateway.pid} port ${gateway.port} (LOG_LEVEL=${LOG_LEVEL}, stdout to /dev/null)`)

  const load = { connections: CONNECTIONS, tokens, redisPid }
  log(`warm-up: ${WARMUP_S} s each`)
  await loadPhase('warm-up', bare, { ...load, durationSeconds: WARMUP_S })
  await loadPhase('warm-up', gateway, { ...load, durationSeconds: WARMUP_S })

  // Rounds alternate the two servers so slow drifts of the machine hit both alike.
  const bareRuns: PhaseResult[] = []
  const ticketRuns: PhaseResult[] = []
  for (let round = 1; round <= ROUNDS; round++) {
    log(`round ${round}/${ROUNDS}: bare route, then POST /ws-ticket, ${DURATION_S} s each at ${CONNECTIONS} connections`)
    bareRuns.push(await loadPhase(`bare Fastify route, round ${round}`, bare, { ...load, redisPid: undefined, durationSeconds: DURATION_S }))
    ticketRuns.push(await loadPhase(`POST /ws-ticket, round ${round}`, gateway, { ...load, durationSeconds: DURATION_S }))
  }

  const connectOptions = { tokens, wsPath: WS_PATH, concurrency: CONNECT_CONCURRENCY, connectTimeoutMs: 10_000, redisPid }
  // The connect path runs each function once per connect: TurboFan needs thousands to optimize it.
  log(`connects: warm-up ${CONNECT_WARMUP}, then ${CONNECTS} at concurrency ${CONNECT_CONCURRENCY}`)
  await connectPhase('warm-up', gateway, { ...connectOptions, total: CONNECT_WARMUP, deadlineMs: 20_000 })
  const connects = await connectPhase(`full connect, concurrency ${CONNECT_CONCURRENCY}`, gateway, { ...connectOptions, total: CONNECTS, deadlineMs: 30_000 })

  const bareCpu = median(bareRuns.map((run) => run.perOperation.server))
  const ticketCpu = median(ticketRuns.map((run) => run.perOperation.server))
  const ratio = ticketCpu / bareCpu
  const bareRate = median(bareRuns.map((run) => run.perSecond))
  const ticketRate = median(ticketRuns.map((run) => run.perSecond))
  const loadAfter = loadAverage()
  const revisionAfter = gitRevision()

  const out = [
    '',
    `realtime-gateway bench — ${revision}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`,
    `autocannon: ${CONNECTIONS} connections, pipelining 1, ${DURATION_S} s per round, ${ROUNDS} rounds; ${USERS} distinct users' JWTs; gateway LOG_LEVEL=${LOG_LEVEL} (stdout to /dev/null), JWT_CACHE_SIZE=${JWT_CACHE_SIZE}, Redis engine`,
    `load average before ${loadBefore}, after ${loadAfter}`,
    ...(revisionAfter === revision ? [] : [`WARNING: the tree changed during the run (${revision} -> ${revisionAfter}): the servers may not run the code named above`]),
    '',
    phaseTable('HTTP phase', 'req', [...bareRuns, ...ticketRuns]),
    '',
    phaseTable('WebSocket phase (ticket + upgrade + session_established, then close)', 'connect', [connects]),
    ...(connects.firstFailure === undefined ? [] : [`first connect failure: ${connects.firstFailure}`]),
    '',
    `server CPU per request, median of ${ROUNDS} rounds: POST /ws-ticket ${ticketCpu.toFixed(1)} µs, bare route ${bareCpu.toFixed(1)} µs`,
    `RATIO ticket/bare server CPU per request: ${ratio.toFixed(2)}x (target <= 2.00x: ${ratio <= 2 ? 'MET' : 'NOT MET'})`,
    `req/s, median: POST /ws-ticket ${ticketRate.toFixed(0)}, bare route ${bareRate.toFixed(0)} (bare/ticket ${(bareRate / ticketRate).toFixed(2)}x)`,
    `full connects: ${connects.perSecond.toFixed(0)}/s, p50 ${connects.p50Ms.toFixed(1)} ms, p99 ${connects.p99Ms.toFixed(1)} ms, server CPU ${connects.perOperation.server.toFixed(0)} µs/connect (${(connects.perOperation.server / ticketCpu).toFixed(1)}x a ticket request)`,
    `total runtime ${((performance.now() - started) / 1000).toFixed(1)} s`
  ]
  console.log(out.join('\n'))

  const failures = [...bareRuns, ...ticketRuns, connects].reduce((sum, run) => sum + run.failures, 0)
  if (failures > 0) {
    console.log(`WARNING: ${failures} non-2xx responses, errors or failed connects: not a clean run. Gateway stderr:\n${gateway.stderrText().slice(0, 2000)}`)
    process.exitCode = 1
  }

  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = `${RESULTS_DIR}run-${new Date().toISOString().replace(/[:.]/g, '-')}.json`
  writeFileSync(file, `${JSON.stringify({
    date: new Date().toISOString(),
    revision,
    revisionAfter,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model,
    node: process.version,
    loadAverage: { before: loadBefore, after: loadAfter },
    settings: { DURATION_S, WARMUP_S, ROUNDS, CONNECTIONS, USERS, CONNECTS, CONNECT_CONCURRENCY, LOG_LEVEL, JWT_CACHE_SIZE },
    summary: { ticketCpu, bareCpu, ratio, ticketRate, bareRate },
    bareRuns,
    ticketRuns,
    connects
  }, null, 2)}\n`)
  log(`results written to ${file}`)
} finally {
  await cleanup()
}

// Fan-out (issue 3), after the servers above are stopped: its own redis-server and children.
if (args['skip-fanout'] !== true) {
  log(`fan-out: ${FANOUT_SUBSCRIBERS} subscribers on one channel, gateway vs bare ws (--skip-fanout to leave out)`)
  const fanout = await runFanout(FANOUT_SUBSCRIBERS, LOG_LEVEL)
  console.log(`\n${fanout.report}`)
  writeFanoutResult(fanout, gitRevision())
  if (!fanout.clean) process.exitCode = 1
}
