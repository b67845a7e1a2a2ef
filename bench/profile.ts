/**
 * Where the gateway's CPU per ticket and per connect goes (docs/benchmarks.md):
 *
 *   npx tsx bench/profile.ts                 # about 4 minutes
 *
 * 1. CPU profiles of the gateway child, one during POST /ws-ticket load and one
 *    during full connects, summarized by area of the hot path: Linux perf (on-CPU
 *    samples of every thread, kernel included; when `perf` is installed) and the
 *    V8 profiler (main thread, wall-clock samples; started and stopped over IPC).
 *    Shares are scaled to the CPU per operation measured without a profiler.
 * 2. Ablations that change configuration only, no source: the gateway with
 *    LOG_LEVEL=info or warn (request log line) and with the Redis or the memory
 *    engine (Redis client and Redis-backed rate limits), and the bare route with
 *    and without Fastify's default logger. Rounds alternate the variants.
 * Profiles are kept under bench/results/profiles/ (open them in Chrome DevTools).
 */
import { mkdirSync, rmSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild } from './lib/child.js'
import { loadPhase, type PhaseResult } from './lib/load.js'
import { connectPhase, gatewayConnector } from './lib/connects.js'
import { phaseTable } from './lib/report.js'
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.js'
import { PERF_NODE_ARGS, perfAvailable, perfRecord, summarizePerf, type PerfSummary } from './lib/perf.js'
import { WS_PATH, gatewayEnv, gitRevision, log, median, mintTokens, table } from './lib/setup.js'

const { values: args } = parseArgs({ options: { duration: { type: 'string', default: '5' }, rounds: { type: 'string', default: '3' } } })
const DURATION_S = Math.min(30, Math.max(1, Math.trunc(Number(args.duration)) || 5))
const ROUNDS = Math.min(5, Math.max(1, Math.trunc(Number(args.rounds)) || 2))
const WARMUP_S = 8
/** Longer: TurboFan is still compiling the gateway a few seconds into the load. */
const PERF_WARMUP_S = 10
/** The connect path runs each function once per connect: it takes thousands to get optimized. */
const CONNECT_WARMUP = 3000
const CONNECTIONS = 50
const PROFILE_DIR = fileURLToPath(new URL('./results/profiles/', import.meta.url))

const children: ServerChild[] = []
let redis: RedisServer | undefined
const started = performance.now()

/** /tmp/perf-<pid>.map files written by the children started for perf. */
const perfMaps: string[] = []

async function cleanup (): Promise<void> {
  await Promise.all(children.map(async (child) => { await child.stop() }))
  await redis?.stop()
  for (const file of perfMaps) rmSync(file, { force: true })
}
process.once('SIGINT', () => { void cleanup().finally(() => { process.exit(130) }) })

function printProfile (title: string, summary: ProfileSummary, microsPerOperation: number): void {
  const share = (micros: number): number => micros / summary.busyMicros
  const rows = (buckets: ProfileSummary['areas'], limit: number): string[][] => buckets.slice(0, limit).map((bucket) => [
    bucket.name, `${(100 * share(bucket.micros)).toFixed(1)}%`, (share(bucket.micros) * microsPerOperation).toFixed(1)
  ])
  console.log(`\n## V8 profile: ${title}\n\nmain thread only, wall-clock samples (time descheduled inside a syscall counts too). µs/op = sampled share x ${microsPerOperation.toFixed(0)} µs/op (server CPU per operation measured without the profiler)\n`)
  console.log(table(['area (self time, charged to the nearest package)', 'share', '≈ µs/op'], rows(summary.areas, 20)))
  console.log('')
  console.log(table(['owner', 'share', '≈ µs/op'], rows(summary.owners, 20)))
  console.log('')
  console.log(table(['function (inclusive; synchronous part only)', 'share', '≈ µs/op'], rows(summary.inclusive, 20)))
  console.log('')
  console.log(table(['function (self)', 'share', '≈ µs/op'], rows(summary.functions, 25)))
}

function printPerf (title: string, summary: PerfSummary, microsPerOperation: number): void {
  const rows = (buckets: readonly { name: string, micros: number }[], limit: number): string[][] => buckets.slice(0, limit).map((bucket) => [
    bucket.name, `${(100 * bucket.micros / summary.total).toFixed(1)}%`, (bucket.micros / summary.total * microsPerOperation).toFixed(1)
  ])
  console.log(`\n## ${title}\n\n${summary.samples} on-CPU samples, all threads; main thread ${(100 * summary.mainThreadShare).toFixed(0)}%, in the kernel ${(100 * summary.kernelShare).toFixed(0)}%. µs/op = share x ${microsPerOperation.toFixed(0)} µs/op (measured without a profiler)\n`)
  console.log(table(['area (charged to the nearest package on the stack)', 'share', '≈ µs/op'], rows(summary.areas, 20)))
  console.log('')
  console.log(table(['owner', 'share', '≈ µs/op'], rows(summary.owners, 22)))
  console.log('')
  console.log(table(['innermost JavaScript function (native work below it included)', 'share', '≈ µs/op'], rows(summary.functions, 30)))
}

const revision = gitRevision()

try {
  mkdirSync(PROFILE_DIR, { recursive: true })
  redis = await RedisServer.start()
  const redisPid = redis.pid!
  const tokens = await mintTokens(1000)
  log(`profile: ${availableParallelism()} cores, node ${process.version}, redis pid ${redisPid}`)

  const memoryEnv = (logLevel: string): Record<string, string> => {
    const env = gatewayEnv(redis!.url, logLevel)
    delete env.REDIS_URL
    delete env.NODE_ENV
    return env
  }
  const variants = [
    { name: 'gateway, Redis engine, LOG_LEVEL=info', script: 'gateway.ts', env: gatewayEnv(redis.url, 'info'), redis: true },
    { name: 'gateway, Redis engine, LOG_LEVEL=warn', script: 'gateway.ts', env: gatewayEnv(redis.url, 'warn'), redis: true },
    { name: 'gateway, memory engine, LOG_LEVEL=info', script: 'gateway.ts', env: memoryEnv('info'), redis: false },
    { name: 'bare route, default options (no logger)', script: 'bare.ts', env: {}, redis: false },
    { name: 'bare route + Fastify default logger, info', script: 'bare.ts', env: { BENCH_BARE_LOG_LEVEL: 'info' }, redis: false }
  ]
  // One at a time (six tsx boots at once overload two cores); each is stopped at the end even if a later one fails.
  const servers: ServerChild[] = []
  for (const variant of variants) {
    const server = await ServerChild.start(variant.name, variant.script, variant.env)
    children.push(server)
    servers.push(server)
  }
  const gateway = servers[0]!

  // 1. Ablations, no profiler.
  for (const [i, server] of servers.entries()) {
    log(`warm-up: ${variants[i]!.name}`)
    await loadPhase('warm-up', server, { connections: CONNECTIONS, tokens, durationSeconds: WARMUP_S })
  }
  const runs: PhaseResult[][] = variants.map(() => [])
  for (let round = 1; round <= ROUNDS; round++) {
    for (const [i, server] of servers.entries()) {
      log(`round ${round}/${ROUNDS}: ${variants[i]!.name}`)
      runs[i]!.push(await loadPhase(`${variants[i]!.name}, round ${round}`, server, {
        connections: CONNECTIONS, tokens, durationSeconds: DURATION_S, ...(variants[i]!.redis ? { redisPid } : {})
      }))
    }
  }
  const cpu = runs.map((variantRuns) => median(variantRuns.map((run) => run.perOperation.server)))
  const BARE = 3

  // 2. Profiles of the reference gateway (Redis engine, info).
  const connectOptions = { connector: gatewayConnector, tokens, wsPath: WS_PATH, concurrency: 50, connectTimeoutMs: 10_000, redisPid }
  log('connects without profiler (reference CPU per connect)')
  await connectPhase('warm-up', gateway, { ...connectOptions, total: CONNECT_WARMUP, deadlineMs: 20_000 })
  const connects = await connectPhase('full connect', gateway, { ...connectOptions, total: 1500, deadlineMs: 30_000 })

  log('profiling POST /ws-ticket')
  const ticketProfile = `${PROFILE_DIR}ticket.cpuprofile`
  await gateway.profileStart()
  const profiledTickets = await loadPhase('POST /ws-ticket, profiler on', gateway, { connections: CONNECTIONS, tokens, durationSeconds: DURATION_S, redisPid })
  await gateway.profileStop(ticketProfile)

  log('profiling full connects')
  const connectProfile = `${PROFILE_DIR}connect.cpuprofile`
  await gateway.profileStart()
  const profiledConnects = await connectPhase('full connect, profiler on', gateway, { ...connectOptions, total: 1500, deadlineMs: 30_000 })
  await gateway.profileStop(connectProfile)

  console.log(`# gateway CPU profile — ${revision}; ${availableParallelism()} cores, node ${process.version}\n`)
  console.log(phaseTable('phase', 'op', [...runs.flat(), connects, profiledTickets, profiledConnects]))
  console.log('')
  console.log(table(['variant', `server CPU µs/req (median of ${ROUNDS})`, 'vs bare'], variants.map((variant, i) => [variant.name, cpu[i]!.toFixed(1), `${(cpu[i]! / cpu[BARE]!).toFixed(2)}x`])))
  console.log('')
  console.log(`request log line in the gateway (info - warn, Redis engine): ${(cpu[0]! - cpu[1]!).toFixed(1)} µs/req`)
  console.log(`Redis engine - memory engine (Redis client and Redis-backed limits), info: ${(cpu[0]! - cpu[2]!).toFixed(1)} µs/req`)
  console.log(`Fastify default request logging (2 lines) on the bare route: ${(cpu[4]! - cpu[BARE]!).toFixed(1)} µs/req`)

  if (perfAvailable()) {
    log('perf: a gateway child and a bare child with --perf-basic-prof')
    const profiled = await ServerChild.start('gateway-perf', 'gateway.ts', gatewayEnv(redis.url, 'info'), PERF_NODE_ARGS)
    children.push(profiled)
    const bareProfiled = await ServerChild.start('bare-perf', 'bare.ts', {}, PERF_NODE_ARGS)
    children.push(bareProfiled)
    perfMaps.push(`/tmp/perf-${profiled.pid}.map`, `/tmp/perf-${bareProfiled.pid}.map`)
    const perfWarm = { connections: CONNECTIONS, tokens, durationSeconds: PERF_WARMUP_S }
    await loadPhase('warm-up', profiled, perfWarm)
    const ticketPerf = `${PROFILE_DIR}ticket.perf.data`
    const ticketRecording = await perfRecord(profiled.pid, ticketPerf, async () => await loadPhase('POST /ws-ticket, perf', profiled, { connections: CONNECTIONS, tokens, durationSeconds: DURATION_S }))
    await connectPhase('warm-up', profiled, { ...connectOptions, total: CONNECT_WARMUP, deadlineMs: 20_000 })
    const connectPerf = `${PROFILE_DIR}connect.perf.data`
    const connectRecording = await perfRecord(profiled.pid, connectPerf, async () => await connectPhase('full connect, perf', profiled, { ...connectOptions, total: 1500, deadlineMs: 30_000 }))
    await loadPhase('warm-up', bareProfiled, perfWarm)
    const barePerf = `${PROFILE_DIR}bare.perf.data`
    const bareRecording = await perfRecord(bareProfiled.pid, barePerf, async () => await loadPhase('bare route, perf', bareProfiled, { connections: CONNECTIONS, tokens, durationSeconds: DURATION_S }))

    const pids = [profiled.pid, bareProfiled.pid]
    await profiled.stop()
    await bareProfiled.stop()
    printPerf(`perf: POST /ws-ticket (${ticketPerf})`, await summarizePerf(ticketPerf, pids[0]!, ticketRecording.mapBytes), cpu[0]!)
    printPerf(`perf: full connect (${connectPerf})`, await summarizePerf(connectPerf, pids[0]!, connectRecording.mapBytes), connects.perOperation.server)
    printPerf(`perf: bare route (${barePerf})`, await summarizePerf(barePerf, pids[1]!, bareRecording.mapBytes), cpu[BARE]!)
  } else {
    log('perf is not installed: V8 profiles only')
  }

  printProfile(`POST /ws-ticket (${ticketProfile})`, summarizeProfile(ticketProfile), cpu[0]!)
  printProfile(`full connect (${connectProfile})`, summarizeProfile(connectProfile), connects.perOperation.server)
  const revisionAfter = gitRevision()
  if (revisionAfter !== revision) console.log(`\nWARNING: the tree changed during the run (${revision} -> ${revisionAfter}): later children may run other code`)
  console.log(`\ntotal runtime ${((performance.now() - started) / 1000).toFixed(1)} s`)
} finally {
  await cleanup()
}
