/**
 * Where a connect's CPU and an idle connection's bytes go (issue 14; docs/benchmarks.md
 * "Connection cost"):
 *
 *   npx tsx bench/profile-connection.ts               # about 1 minute
 *   npx tsx bench/profile-connection.ts --hold 2000 --connects 3000
 *   npx tsx bench/profile-connection.ts --heap-only   # part 2 only
 *
 * 1. V8 CPU profile of the gateway child during full connects (ticket + upgrade +
 *    session_established + close), after a warm-up, summarized by area and function
 *    (bench/lib/cpuprofile.ts), scaled to the CPU per connect measured just before
 *    without the profiler.
 * 2. Heap snapshots of a fresh gateway and a fresh bare `ws` child before and after
 *    holding N idle connections: the growth per connection by kind of object
 *    (bench/lib/heap-summary.ts), beside the RSS growth.
 * Everything it starts is stopped by pid; files under bench/results/profiles/.
 */
import { mkdirSync, rmSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild } from './lib/child.js'
import { bareWsConnector, connectPhase, gatewayConnector, type Connector, type HeldConnection } from './lib/connects.js'
import { summarizeProfile } from './lib/cpuprofile.js'
import { heapGrowth, summarizeHeap } from './lib/heap-summary.js'
import { WS_PATH, gatewayEnv, gitRevision, log, mintTokens, table } from './lib/setup.js'
import { Agent } from 'node:http'

const { values: args } = parseArgs({ options: { hold: { type: 'string', default: '2000' }, connects: { type: 'string', default: '2000' }, 'heap-only': { type: 'boolean', default: false } } })
const HOLD = Math.min(10_000, Math.max(100, Math.trunc(Number(args.hold)) || 2000))
const CONNECTS = Math.min(20_000, Math.max(100, Math.trunc(Number(args.connects)) || 2000))
const PROFILE_DIR = fileURLToPath(new URL('./results/profiles/', import.meta.url))

const children: ServerChild[] = []
let redis: RedisServer | undefined
async function cleanup (): Promise<void> {
  await Promise.all(children.map(async (child) => { await child.stop() }))
  await redis?.stop()
}
process.once('SIGINT', () => { void cleanup().finally(() => { process.exit(130) }) })

async function heapPerConnection (name: string, child: ServerChild, connector: Connector, tokens: readonly string[]): Promise<void> {
  const options = { tokens, wsPath: WS_PATH, concurrency: 50, connectTimeoutMs: 10_000, connector }
  await connectPhase('warm-up', child, { ...options, total: 200, deadlineMs: 20_000 })
  const before = `${PROFILE_DIR}${name}-idle-0.heapsnapshot`
  const after = `${PROFILE_DIR}${name}-idle-${HOLD}.heapsnapshot`
  const memoryBefore = await child.memory()
  await child.heapSnapshot(before)
  const agent = new Agent({ keepAlive: true, maxSockets: 50 })
  const held: HeldConnection[] = []
  let next = 0
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < HOLD) {
      const token = tokens[next++ % tokens.length]!
      held.push(await connector(agent, child, token, options))
    }
  }))
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const memoryAfter = await child.memory()
  await child.heapSnapshot(after)
  for (let i = 0; i < held.length; i += 500) await Promise.all(held.slice(i, i + 500).map(async (connection) => { await connection.close() }))
  agent.destroy()
  const rows = heapGrowth(summarizeHeap(before), summarizeHeap(after), HOLD)
  // BENCH_KEEP_SNAPSHOTS=1 keeps them for Chrome DevTools (hundreds of MB each).
  if (process.env.BENCH_KEEP_SNAPSHOTS !== '1') {
    rmSync(before)
    rmSync(after)
  }
  const total = rows.reduce((sum, row) => sum + row.bytesPer, 0)
  console.log(`\n## ${name}: heap growth per idle connection (${HOLD} held)\n`)
  console.log(`RSS ${((memoryAfter.rss - memoryBefore.rss) / HOLD).toFixed(0)} B/conn, V8 heap used ${((memoryAfter.heapUsed - memoryBefore.heapUsed) / HOLD).toFixed(0)} B/conn, external ${((memoryAfter.external - memoryBefore.external) / HOLD).toFixed(0)} B/conn; snapshot self sizes ${total.toFixed(0)} B/conn\n`)
  console.log(table(['kind (snapshot node type and name)', 'count/conn', 'bytes/conn'], rows.filter((row) => Math.abs(row.bytesPer) >= 16).slice(0, 40).map((row) => [row.kind.replace(/\|/g, '/'), row.countPer.toFixed(2), row.bytesPer.toFixed(0)])))
}

async function profileConnects (redisServer: RedisServer, tokens: readonly string[]): Promise<void> {
  const gateway = await ServerChild.start('gateway', 'gateway.ts', gatewayEnv(redisServer.url, 'info'), ['--expose-gc'])
  children.push(gateway)
  const connectOptions = { connector: gatewayConnector, tokens, wsPath: WS_PATH, concurrency: 50, connectTimeoutMs: 10_000, redisPid: redisServer.pid }
  await connectPhase('warm-up', gateway, { ...connectOptions, total: 3000, deadlineMs: 30_000 })
  const reference = await connectPhase('full connect', gateway, { ...connectOptions, total: CONNECTS, deadlineMs: 30_000 })
  const connectProfile = `${PROFILE_DIR}connect.cpuprofile`
  await gateway.profileStart()
  await connectPhase('full connect, profiler on', gateway, { ...connectOptions, total: CONNECTS, deadlineMs: 30_000 })
  await gateway.profileStop(connectProfile)
  await gateway.stop()
  const perConnect = reference.perOperation.server
  const summary = summarizeProfile(connectProfile)
  const rows = (buckets: ReadonlyArray<{ name: string, micros: number }>, limit: number): string[][] => buckets.slice(0, limit).map((bucket) => [
    bucket.name.replace(/\|/g, '/'), `${(100 * bucket.micros / summary.busyMicros).toFixed(1)}%`, (bucket.micros / summary.busyMicros * perConnect).toFixed(1)
  ])
  console.log(`\n## V8 profile of full connects (${connectProfile})\n\nserver CPU per connect without the profiler: ${perConnect.toFixed(0)} µs (${reference.perSecond.toFixed(0)} connects/s); µs = sampled share × that\n`)
  console.log(table(['area (self time, charged to the nearest package)', 'share', '≈ µs/connect'], rows(summary.areas, 20)))
  console.log('')
  console.log(table(['function (inclusive; synchronous part only)', 'share', '≈ µs/connect'], rows(summary.inclusive, 25)))
  console.log('')
  console.log(table(['function (self)', 'share', '≈ µs/connect'], rows(summary.functions, 40)))
}

const revision = gitRevision()
try {
  mkdirSync(PROFILE_DIR, { recursive: true })
  redis = await RedisServer.start()
  const tokens = await mintTokens(1000)
  log(`profile-connection at ${revision}: ${availableParallelism()} cores, node ${process.version}`)
  console.log(`# connection cost profile — ${revision}; ${availableParallelism()} cores, node ${process.version}`)

  // 1. CPU of a full connect.
  if (args['heap-only'] !== true) await profileConnects(redis, tokens)

  // 2. Bytes of an idle connection, fresh children.
  // Writing a snapshot blocks the loop for seconds: admission control would then refuse the next tickets.
  const freshGateway = await ServerChild.start('gateway (heap)', 'gateway.ts', { ...gatewayEnv(redis.url, 'info'), ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '0' }, ['--expose-gc'])
  children.push(freshGateway)
  await heapPerConnection('gateway', freshGateway, gatewayConnector, tokens)
  await freshGateway.stop()
  const bareWs = await ServerChild.start('bare ws (heap)', 'bare-ws.ts', { WS_PATH }, ['--expose-gc'])
  children.push(bareWs)
  await heapPerConnection('bare-ws', bareWs, bareWsConnector, tokens)
  await bareWs.stop()
} finally {
  await cleanup()
}
