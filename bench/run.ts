/**
 * npm run bench — every figure of issue 14 with its peer, measured in the same run, on
 * this machine, loopback only. See docs/benchmarks.md.
 *
 * Peers (child processes, bench/servers/): bare Fastify (bare.ts) for POST /ws-ticket;
 * bare `ws` (bare-ws.ts) and Socket.IO 4 + @socket.io/redis-adapter (socketio.ts) for
 * full connects (concurrency 50), RSS per idle connection (--hold, fresh children) and
 * fan-out (bench/fanout.ts: bare ws, Socket.IO, gateway). The closing table (figure,
 * peers, gateway, ratio, target) is printed, written next to the JSON as .md and into
 * docs/benchmarks.md between the "peers, last run" markers.
 *
 *   npm run bench                              # default run (~2–3 min)
 *   npm run bench -- --duration 5 --rounds 1   # shorter HTTP phase
 *   npm run bench -- --connects 1000 --connect-rounds 2 --connect-warmup 3000 --hold 5000
 *   npm run bench -- --skip-fanout             # without the fan-out phase (bench/fanout.ts)
 *   npm run bench -- avalanche [options]       # only the reconnect avalanche (bench/avalanche.ts), not run by default
 *   npm run bench -- presence [--members N]    # only the presence benchmark (bench/presence.ts), not run by default
 *   npm run bench -- scale [--hold 15000 --subscribers 10000 --holders 3 --heartbeat-ms 1000]
 *                                              # only the scale figures (bench/scale.ts): 15,000 idle connections
 *                                              # (RSS, heartbeat CPU) and fan-out to 10,000, gateway vs bare ws
 *
 * Where the gateway's CPU goes: bench/profile.ts and bench/micro.ts.
 *
 * Everything it starts (redis-server on a free port, the server children) is
 * stopped by pid at the end. The shared Redis on 6379 is never touched.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild } from './lib/child.js'
import { loadPhase, type PhaseResult } from './lib/load.js'
import { bareWsConnector, connectPhase, gatewayConnector, socketIoConnector, type ConnectResult } from './lib/connects.js'
import { holdPhase, type HoldResult } from './lib/hold.js'
import { peerTable, rate, type RatedFigure } from './lib/peer-table.js'
import { writeDocsSection } from './lib/docs-section.js'
import { runFanout, writeFanoutResult } from './fanout.js'
import { phaseTable } from './lib/report.js'
import { JWT_SECRET, WS_PATH, gatewayEnv, gitRevision, log, median, mintTokens } from './lib/setup.js'

// `avalanche` as the first argument runs that benchmark alone (minutes at full scale,
// so the default run leaves it out); its options are its own.
if (process.argv[2] === 'avalanche') {
  const { runAvalanche } = await import('./avalanche.js')
  process.exit(await runAvalanche(process.argv.slice(3)))
}
if (process.argv[2] === 'scale') {
  const { runScale } = await import('./scale.js')
  process.exit(await runScale(process.argv.slice(3)))
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
    connects: { type: 'string', default: '1000' },
    'connect-rounds': { type: 'string', default: '2' },
    'connect-warmup': { type: 'string', default: '3000' },
    hold: { type: 'string', default: '5000' },
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
const CONNECT_WARMUP = bounded('connect-warmup', args['connect-warmup'], 0, 20_000)
/** A fixed young generation for the hold phase's children (see there). */
const HOLD_HEAP_ARGS = ['--min-semi-space-size=16', '--max-semi-space-size=16']
const CONNECT_ROUNDS = bounded('connect-rounds', args['connect-rounds'], 1, 5)
const HOLD = bounded('hold', args.hold, 1, 15_000)
const LOG_LEVEL = args['log-level'] ?? 'info'
// 0 measures every request paying a full JWT verification (no verified-token cache).
const JWT_CACHE_SIZE = bounded('jwt-cache-size', args['jwt-cache-size'], 0, 1_000_000)
const FANOUT_SUBSCRIBERS = bounded('fanout-subscribers', args['fanout-subscribers'], 1, 5000)
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')

const started = performance.now()
const children: ServerChild[] = []
let redis: RedisServer | undefined
/** The issue-14 table, filled as the phases end; printed and written at the end. */
const peerFigures: RatedFigure[] = []
let runFile: string | undefined
let runHeader = ''

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
  // --expose-gc: the memory readings of the hold phase come after a full GC.
  const gcArgs = ['--expose-gc']
  const bare = await ServerChild.start('bare', 'bare.ts', {}, gcArgs)
  children.push(bare)
  const gatewayChildEnv = gatewayEnv(redis.url, LOG_LEVEL, JWT_CACHE_SIZE)
  const gateway = await ServerChild.start('gateway', 'gateway.ts', gatewayChildEnv, gcArgs)
  children.push(gateway)
  const bareWsEnv = { WS_PATH }
  const bareWs = await ServerChild.start('bare-ws', 'bare-ws.ts', bareWsEnv, gcArgs)
  children.push(bareWs)
  const socketIoEnv = { REDIS_URL: redis.url, JWT_SECRET }
  const socketIo = await ServerChild.start('socket.io', 'socketio.ts', socketIoEnv, gcArgs)
  children.push(socketIo)
  log(`bare pid ${bare.pid} port ${bare.port}; gateway pid ${gateway.pid} port ${gateway.port} (LOG_LEVEL=${LOG_LEVEL}, stdout to /dev/null); bare ws pid ${bareWs.pid}; Socket.IO pid ${socketIo.pid}`)

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

  // Full connects of the three WebSocket peers, rounds alternating them (A B C A B C).
  const peers = [
    { key: 'bareWs', name: 'bare ws', child: bareWs, connector: bareWsConnector, script: 'bare-ws.ts', env: bareWsEnv },
    { key: 'socketIo', name: 'Socket.IO', child: socketIo, connector: socketIoConnector, script: 'socketio.ts', env: socketIoEnv },
    { key: 'gateway', name: 'gateway', child: gateway, connector: gatewayConnector, script: 'gateway.ts', env: gatewayChildEnv }
  ] as const
  const connectOptions = { tokens, wsPath: WS_PATH, concurrency: CONNECT_CONCURRENCY, connectTimeoutMs: 10_000, redisPid }
  // The connect path runs each function once per connect: TurboFan needs thousands to optimize it.
  log(`connects: warm-up ${CONNECT_WARMUP} per peer, then ${CONNECT_ROUNDS} rounds of ${CONNECTS} at concurrency ${CONNECT_CONCURRENCY}`)
  for (const peer of peers) await connectPhase('warm-up', peer.child, { ...connectOptions, connector: peer.connector, total: CONNECT_WARMUP, deadlineMs: 20_000 })
  const connectRuns = { bareWs: [] as ConnectResult[], socketIo: [] as ConnectResult[], gateway: [] as ConnectResult[] }
  for (let round = 1; round <= CONNECT_ROUNDS; round++) {
    for (const peer of peers) {
      connectRuns[peer.key].push(await connectPhase(`${peer.name}: full connect, round ${round}`, peer.child, { ...connectOptions, connector: peer.connector, total: CONNECTS, deadlineMs: 30_000 }))
    }
  }

  // Memory: HOLD idle connections per peer, one peer at a time, each on a fresh child
  // (RSS keeps the high-water mark of the connect phases above: a reused child shows
  // the new sockets landing in pages it already has). A thousand connects first, so the
  // code paths exist and the young generation is touched before the "before" reading;
  // its size is fixed for every peer alike (HOLD_HEAP_ARGS), or its growth from 1 to
  // 16 MiB semi-spaces during the hold would land in one peer's figure and not another's.
  const holds: Partial<Record<typeof peers[number]['key'], HoldResult>> = {}
  for (const peer of peers) {
    await peer.child.stop()
    const fresh = await ServerChild.start(`${peer.name} (fresh, hold)`, peer.script, peer.env, [...gcArgs, ...HOLD_HEAP_ARGS])
    children.push(fresh)
    await connectPhase('warm-up', fresh, { ...connectOptions, connector: peer.connector, total: 1000, deadlineMs: 20_000 })
    log(`hold: ${HOLD} idle connections to ${peer.name} (fresh pid ${fresh.pid})`)
    holds[peer.key] = await holdPhase(peer.name, fresh, { count: HOLD, concurrency: CONNECT_CONCURRENCY, tokens, wsPath: WS_PATH, connector: peer.connector, deadlineMs: 60_000, settleMs: 2000 })
    await fresh.stop()
  }

  const bareCpu = median(bareRuns.map((run) => run.perOperation.server))
  const ticketCpu = median(ticketRuns.map((run) => run.perOperation.server))
  const ratio = ticketCpu / bareCpu
  const bareRate = median(bareRuns.map((run) => run.perSecond))
  const ticketRate = median(ticketRuns.map((run) => run.perSecond))
  const connectCpu = (key: keyof typeof connectRuns): number => median(connectRuns[key].map((run) => run.perOperation.server))
  const connectRate = (key: keyof typeof connectRuns): number => median(connectRuns[key].map((run) => run.perSecond))
  const kib = (bytes: number | undefined): number => (bytes ?? Number.NaN) / 1024
  peerFigures.push(
    rate({ figure: 'server CPU per full connect (ticket + upgrade + first frame + close)', bareWs: connectCpu('bareWs'), socketIo: connectCpu('socketIo'), gateway: connectCpu('gateway'), unit: ' µs', digits: 0, versus: 'socketIo', target: 0.67, direction: 'max' }),
    rate({ figure: `connects/s at concurrency ${CONNECT_CONCURRENCY}`, bareWs: connectRate('bareWs'), socketIo: connectRate('socketIo'), gateway: connectRate('gateway'), unit: '', digits: 0, versus: 'socketIo', target: 1.5, direction: 'min' }),
    rate({ figure: `server RSS per idle connection (${HOLD} held)`, bareWs: kib(holds.bareWs?.rssPerConnection), socketIo: kib(holds.socketIo?.rssPerConnection), gateway: kib(holds.gateway?.rssPerConnection), unit: ' KiB', digits: 1, versus: 'bareWs', target: 1.3, direction: 'max' }),
    rate({ figure: `server V8 heap used per idle connection (${HOLD} held)`, bareWs: kib(holds.bareWs?.heapPerConnection), socketIo: kib(holds.socketIo?.heapPerConnection), gateway: kib(holds.gateway?.heapPerConnection), unit: ' KiB', digits: 1, versus: 'bareWs', target: 1.3, direction: 'max' }),
    rate({ figure: 'server CPU per `POST /ws-ticket` (one user JWT, cached)', bareFastify: bareCpu, gateway: ticketCpu, unit: ' µs', digits: 1, versus: 'bareFastify', target: 2, direction: 'max' })
  )
  const loadAfter = loadAverage()
  const revisionAfter = gitRevision()
  const allConnects = [...connectRuns.bareWs, ...connectRuns.socketIo, ...connectRuns.gateway]
  const holdRow = (hold: HoldResult | undefined): string => hold === undefined ? '' : `| ${hold.name} | ${hold.held} | ${hold.failures} | ${(hold.rssBefore / 2 ** 20).toFixed(1)} | ${(hold.rssAfter / 2 ** 20).toFixed(1)} | ${kib(hold.rssPerConnection).toFixed(1)} | ${kib(hold.marginalRssPerConnection).toFixed(1)} | ${kib(hold.heapPerConnection).toFixed(1)} | ${kib(hold.heapTotalPerConnection).toFixed(1)} | ${kib(hold.externalPerConnection).toFixed(2)} |`

  const out = [
    '',
    `realtime-gateway bench — ${revision}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`,
    `autocannon: ${CONNECTIONS} connections, pipelining 1, ${DURATION_S} s per round, ${ROUNDS} rounds; ${USERS} distinct users' JWTs; gateway LOG_LEVEL=${LOG_LEVEL} (stdout to /dev/null), JWT_CACHE_SIZE=${JWT_CACHE_SIZE}, Redis engine`,
    `load average before ${loadBefore}, after ${loadAfter}`,
    ...(revisionAfter === revision ? [] : [`WARNING: the tree changed during the run (${revision} -> ${revisionAfter}): the servers may not run the code named above`]),
    '',
    phaseTable('HTTP phase', 'req', [...bareRuns, ...ticketRuns]),
    '',
    phaseTable('WebSocket phase (connect to the first server frame, then client close)', 'connect', allConnects),
    ...allConnects.flatMap((run) => run.firstFailure === undefined ? [] : [`${run.name}: first connect failure: ${run.firstFailure}`]),
    '',
    '| idle connections held | held | failed | RSS before MiB | RSS after MiB | RSS KiB/conn | RSS KiB/conn, 2nd half | V8 heap used KiB/conn | V8 heap total KiB/conn | external KiB/conn |',
    '|:---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    holdRow(holds.bareWs), holdRow(holds.socketIo), holdRow(holds.gateway),
    ...Object.values(holds).flatMap((hold) => hold.firstFailure === undefined ? [] : [`${hold.name}: first hold failure: ${hold.firstFailure}`]),
    '',
    `server CPU per request, median of ${ROUNDS} rounds: POST /ws-ticket ${ticketCpu.toFixed(1)} µs, bare route ${bareCpu.toFixed(1)} µs`,
    `RATIO ticket/bare server CPU per request: ${ratio.toFixed(2)}x (target <= 2.00x: ${ratio <= 2 ? 'MET' : 'NOT MET'})`,
    `req/s, median: POST /ws-ticket ${ticketRate.toFixed(0)}, bare route ${bareRate.toFixed(0)} (bare/ticket ${(bareRate / ticketRate).toFixed(2)}x)`,
    `total runtime so far ${((performance.now() - started) / 1000).toFixed(1)} s`
  ]
  console.log(out.join('\n'))

  const failures = [...bareRuns, ...ticketRuns, ...allConnects].reduce((sum, run) => sum + run.failures, 0) + Object.values(holds).reduce((sum, hold) => sum + hold.failures, 0)
  if (failures > 0) {
    console.log(`WARNING: ${failures} non-2xx responses, errors or failed connects: not a clean run. Gateway stderr:\n${gateway.stderrText().slice(0, 2000)}`)
    process.exitCode = 1
  }

  mkdirSync(RESULTS_DIR, { recursive: true })
  runFile = `${RESULTS_DIR}run-${new Date().toISOString().replace(/[:.]/g, '-')}`
  runHeader = `\`npm run bench\` at \`${revision}\`${revisionAfter === revision ? '' : ` (changed to \`${revisionAfter}\` during the run)`}, ${new Date().toISOString().slice(0, 16)} UTC: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), Node ${process.version}, load average ${loadBefore} before and ${loadAfter} after`
  writeFileSync(`${runFile}.json`, `${JSON.stringify({
    date: new Date().toISOString(),
    revision,
    revisionAfter,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model,
    node: process.version,
    loadAverage: { before: loadBefore, after: loadAfter },
    settings: { DURATION_S, WARMUP_S, ROUNDS, CONNECTIONS, USERS, CONNECTS, CONNECT_ROUNDS, CONNECT_CONCURRENCY, HOLD, LOG_LEVEL, JWT_CACHE_SIZE },
    summary: { ticketCpu, bareCpu, ratio, ticketRate, bareRate },
    bareRuns,
    ticketRuns,
    connectRuns,
    holds
  }, null, 2)}\n`)
  log(`results written to ${runFile}.json`)
} finally {
  await cleanup()
}

// Fan-out (issue 3), after the servers above are stopped: its own redis-server and children.
if (args['skip-fanout'] !== true) {
  log(`fan-out: ${FANOUT_SUBSCRIBERS} subscribers on one channel, gateway vs bare ws and Socket.IO (--skip-fanout to leave out)`)
  const fanout = await runFanout(FANOUT_SUBSCRIBERS, LOG_LEVEL)
  console.log(`\n${fanout.report}`)
  writeFanoutResult(fanout, gitRevision())
  if (!fanout.clean) process.exitCode = 1
  const { bare: ws, socketIo: sio, gateway: gw } = fanout
  peerFigures.push(
    rate({ figure: `fan-out CPU per delivery (${FANOUT_SUBSCRIBERS} subs × 200 msgs)`, bareWs: ws.serverCpuPerDeliveryMicros, socketIo: sio.serverCpuPerDeliveryMicros, gateway: gw.serverCpuPerDeliveryMicros, unit: ' µs', digits: 1, versus: 'bareWs', target: 0.8, direction: 'max' }),
    rate({ figure: 'fan-out delivery p99', bareWs: ws.p99Ms, socketIo: sio.p99Ms, gateway: gw.p99Ms, unit: ' ms', digits: 1, versus: 'bareWs', target: 1, direction: 'max' })
  )
}

if (runFile !== undefined && peerFigures.length > 0) {
  const section = [runHeader, '', peerTable(peerFigures), '', `Total runtime ${((performance.now() - started) / 1000).toFixed(0)} s. Measured with the other sessions' load on the machine unless the load average says otherwise; compare ratios of one run only.`].join('\n')
  console.log(`\n${section}\n`)
  writeFileSync(`${runFile}.md`, `${section}\n`)
  writeDocsSection(section)
  log(`peer table written to ${runFile}.md and docs/benchmarks.md (section "Peers, last run")`)
}
