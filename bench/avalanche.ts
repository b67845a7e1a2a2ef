/**
 * Reconnect-avalanche benchmark (SPEC §13, issue 9): N real SDK clients behind one
 * IP, two gateway instances with the shipped defaults, one of them SIGTERMed, then
 * the other SIGKILLed. See docs/benchmarks.md "Reconnect avalanche".
 *
 *   npm run bench -- avalanche                                  # 5000 clients, 4 generators, 20 msg/s
 *   npm run bench -- avalanche --clients 200 --generators 2     # a small smoke run (~1 min)
 *   npm run bench -- avalanche --rate 5 --phase-timeout 180 --routing tcp
 *
 * Topology, loopback only: redis-server (free port, no persistence) ← gateway a and
 * gateway b (`node dist/server/main.js`, NODE_ENV=production and only the variables
 * production requires) ← a round-robin TCP balancer (child process) ← K load
 * generator processes holding the N RealtimeClients (dist/client, `ws`, Node's
 * fetch). A backend publishes to `room:all` through the balancer at --rate during
 * every phase. Every process it starts is stopped by pid at the end, also on an
 * error or Ctrl-C.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import { SignJWT } from 'jose'
import { ProcSampler, type MachineUsage, type ProcUsage } from './lib/proc-sampler.js'
import { RedisProcess, freePort } from './lib/redis-process.js'
import { JWT_SECRET, fmt, gitRevision, log, table } from './lib/setup.js'
import {
  distribution, emptyTallies, ledgerTotals, mergeTallies, rampFigures, readyzFigures, recoveryFigures, seconds, tallyText,
  type Distribution, type ReadyzFigures, type RecoveryFigures
} from './avalanche/analysis.js'
import { TsChild } from './avalanche/children.js'
import { GatewayProcess } from './avalanche/gateway-process.js'
import { Publisher, type PublisherReport } from './avalanche/publisher.js'
import { ReadinessPoller } from './avalanche/readiness.js'
import {
  now,
  type Backend, type BackendStats, type ClientRecord, type FromBalancer, type FromGenerator, type PhaseTallies, type ToBalancer, type ToGenerator
} from './avalanche/protocol.js'

const SHARED_CHANNEL = 'room:all'
const READYZ_INTERVAL_MS = 100
const SAMPLE_INTERVAL_MS = 500
/** A kill phase ends once no client has dropped for this long (and all are back). */
const STABLE_MS = 2000
/** Quiet time between phases. */
const SETTLE_MS = 3000
const START_TIMEOUT_MS = 30_000
const ROOT = fileURLToPath(new URL('../', import.meta.url))
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

/** SPEC §13 targets. */
const TARGET_RAMP_MS = 15_000
const TARGET_SIGTERM_T99_MS = 10_000
const TARGET_SIGKILL_T99_MS = 15_000
const TARGET_READYZ_P99_MS = 100

interface Options {
  readonly clients: number
  readonly generators: number
  readonly rate: number
  readonly phaseTimeoutMs: number
  /** `readiness`: the balancer skips instances whose /readyz is not 200; `tcp`: only connect failures. */
  readonly routing: 'readiness' | 'tcp'
}

function bounded (name: string, value: string | undefined, min: number, max: number): number {
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new Error(`--${name} must be an integer in [${min}, ${max}]`)
  return parsed
}

function parseOptions (argv: readonly string[]): Options {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      clients: { type: 'string', default: '5000' },
      generators: { type: 'string', default: '4' },
      rate: { type: 'string', default: '20' },
      'phase-timeout': { type: 'string', default: '120' },
      routing: { type: 'string', default: 'readiness' }
    }
  })
  const routing = values.routing
  if (routing !== 'readiness' && routing !== 'tcp') throw new Error('--routing must be readiness or tcp')
  const clients = bounded('clients', values.clients, 1, 20_000)
  return {
    clients,
    generators: Math.min(clients, bounded('generators', values.generators, 1, 16)),
    rate: bounded('rate', values.rate, 1, 200),
    phaseTimeoutMs: bounded('phase-timeout', values['phase-timeout'], 10, 600) * 1000,
    routing
  }
}

function newestMtime (path: string): number {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return readdirSync(path).reduce((newest, entry) => Math.max(newest, newestMtime(join(path, entry))), stat.mtimeMs)
}

/** Builds when dist/ is missing or older than src/ (the run must measure the code of this tree). */
function ensureBuilt (): boolean {
  const outputs = ['dist/server/main.js', 'dist/client/index.js'].map((file) => join(ROOT, file))
  const built = outputs.every((file) => existsSync(file)) ? Math.min(...outputs.map((file) => statSync(file).mtimeMs)) : 0
  const source = Math.max(newestMtime(join(ROOT, 'src')), statSync(join(ROOT, 'package.json')).mtimeMs)
  if (built >= source) return false
  log('dist/ is missing or older than src/: npm run build')
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] })
  return true
}

const loadAverage = (): string => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

type Generator = TsChild<ToGenerator, FromGenerator>
type Balancer = TsChild<ToBalancer, FromBalancer>
type Progress = Extract<FromGenerator, { type: 'progress' }>

interface Phase {
  readonly name: string
  readonly start: number
  end: number
  timedOut: boolean
  signalAt?: number
  victim?: string
  /** Open sessions on the victim (its rtgw_connections_open) right before the signal, and on the other instance. */
  held?: number
  heldOther?: number
  /** From the signal to the victim's exit, and how it ended. */
  victimExitMs?: number
  victimExit?: string
}

interface PhaseFigures {
  readonly name: string
  readonly seconds: number
  readonly timedOut: boolean
  readonly ramp?: Distribution
  readonly recovery?: RecoveryFigures
  readonly held?: number
  readonly heldOther?: number
  readonly victim?: string
  readonly victimExitMs?: number
  readonly victimExit?: string
  readonly tallies: PhaseTallies
  /** Busy cores of the whole machine, of this run's processes, and of the gateways alone. */
  readonly machine: MachineUsage
  readonly runCores: number
  readonly gatewayCores: number
  readonly readyz: ReadyzFigures
  readonly readyzByInstance: Record<string, ReadyzFigures>
}

interface Target {
  readonly target: string
  readonly figure: string
  readonly pass: boolean | undefined
}

export async function runAvalanche (argv: readonly string[]): Promise<number> {
  const options = parseOptions(argv)
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  mkdirSync(RESULTS_DIR, { recursive: true })

  const sampler = new ProcSampler(SAMPLE_INTERVAL_MS)
  const gateways: GatewayProcess[] = []
  const generators: Generator[] = []
  let redis: RedisProcess | undefined
  let balancer: Balancer | undefined
  let poller: ReadinessPoller | undefined
  let publisher: Publisher | undefined

  let cleaning: Promise<void> | undefined
  const cleanup = async (): Promise<void> => {
    cleaning ??= (async () => {
      sampler.stop()
      await poller?.stop().catch(() => {})
      if (publisher !== undefined) await publisher.stop().catch(() => undefined)
      for (const generator of generators) generator.send({ type: 'close' })
      await Promise.all(generators.map(async (generator) => { await generator.stop(2000) }))
      await balancer?.stop()
      await Promise.all(gateways.map(async (gateway) => { await gateway.kill() }))
      await redis?.stop()
    })()
    await cleaning
  }
  let interrupted = false
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = true
    log(`${signal}: stopping every process of the run`)
    void cleanup().finally(() => { process.exit(130) })
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  try {
    const revision = gitRevision()
    const loadBefore = loadAverage()
    const cores = availableParallelism()
    log(`avalanche at ${revision}: ${cores} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average ${loadBefore}`)
    log(`${options.clients} clients on ${options.generators} generators, ${options.rate} msg/s on ${SHARED_CHANNEL}, phase timeout ${options.phaseTimeoutMs / 1000} s, routing ${options.routing}`)
    const rebuilt = ensureBuilt()
    sampler.watch('orchestrator', process.pid)

    redis = await RedisProcess.start()
    sampler.watch('redis-server', redis.pid)
    log(`redis-server pid ${redis.pid} on 127.0.0.1:${redis.port}`)

    // The shipped defaults: only what NODE_ENV=production requires, nothing that raises a limit.
    const env = { NODE_ENV: 'production', REDIS_URL: redis.url, JWT_SECRET, ALLOWED_ORIGINS: 'http://127.0.0.1', LOG_LEVEL: 'warn' }
    for (const name of ['gw-a', 'gw-b']) {
      gateways.push(new GatewayProcess({ name, port: await freePort(), probePort: await freePort(), logFile: join(RESULTS_DIR, `avalanche-${stamp}-${name}.log`), cwd: ROOT, env }))
    }
    const [gwA, gwB] = gateways as [GatewayProcess, GatewayProcess]
    for (const gateway of gateways) gateway.start()
    await Promise.all(gateways.map(async (gateway) => { await gateway.waitReady(START_TIMEOUT_MS) }))
    for (const gateway of gateways) {
      sampler.watch(gateway.name, gateway.pid!)
      log(`${gateway.name} pid ${gateway.pid} on 127.0.0.1:${gateway.port}, log ${gateway.logFile}`)
    }

    const activeBalancer: Balancer = new TsChild<ToBalancer, FromBalancer>('balancer', new URL('./avalanche/balancer.ts', import.meta.url))
    balancer = activeBalancer
    const listening = await activeBalancer.next((message): message is Extract<FromBalancer, { type: 'listening' }> => message.type === 'listening', START_TIMEOUT_MS, 'listening')
    const balancerUrl = `http://127.0.0.1:${listening.port}`
    const sendBackends = (ready: ReadonlyMap<string, boolean>): void => {
      const backends: Backend[] = gateways.map((gateway) => ({ name: gateway.name, port: gateway.port, ready: options.routing === 'tcp' || ready.get(gateway.name) !== false }))
      activeBalancer.send({ type: 'backends', backends })
    }
    sendBackends(new Map())
    sampler.watch('balancer', activeBalancer.pid)
    log(`balancer pid ${activeBalancer.pid} on ${balancerUrl}`)

    poller = new ReadinessPoller(gateways, READYZ_INTERVAL_MS, sendBackends)
    poller.start()
    sampler.start()
    // The /readyz latencies are read by this process: its own event-loop delay bounds how much of them is ours.
    const ownLag = monitorEventLoopDelay({ resolution: 10 })
    ownLag.enable()

    // Generators: the clients are built (tokens minted) before the clock starts.
    const progress = new Map<Generator, Progress>()
    const sdkUrl = pathToFileURL(join(ROOT, 'dist/client/index.js')).href
    let first = 0
    for (let k = 0; k < options.generators; k++) {
      const count = Math.floor(options.clients / options.generators) + (k < options.clients % options.generators ? 1 : 0)
      const generator: Generator = new TsChild<ToGenerator, FromGenerator>(`generator-${k}`, new URL('./avalanche/generator.ts', import.meta.url))
      generators.push(generator)
      generator.on((message) => { if (message.type === 'progress') progress.set(generator, message) })
      generator.send({ type: 'arm', url: balancerUrl, first, count, secret: JWT_SECRET, sharedChannel: SHARED_CHANNEL, sdkUrl })
      sampler.watch(generator.name, generator.pid)
      first += count
    }
    await Promise.all(generators.map(async (generator) => {
      await generator.next((message) => message.type === 'armed', 120_000, 'armed')
    }))
    log(`${generators.length} generators armed: ${options.clients} clients with their own JWTs (sub av-user-<i>, channels [${SHARED_CHANNEL}])`)

    const serviceToken = await new SignJWT({ scope: 'gateway:publish' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('avalanche-backend')
      .setIssuedAt()
      .setExpirationTime('3h')
      .sign(new TextEncoder().encode(JWT_SECRET))
    const activePublisher = new Publisher({ baseUrl: balancerUrl, token: serviceToken, channel: SHARED_CHANNEL, rate: options.rate, runId: `avalanche-${stamp}` })
    publisher = activePublisher
    activePublisher.start()

    const totals = (): { up: number, down: number, neverUp: number, downEvents: number } => {
      const sum = { up: 0, down: 0, neverUp: options.clients, downEvents: 0 }
      if (progress.size === generators.length) sum.neverUp = 0
      for (const value of progress.values()) {
        sum.up += value.up
        sum.down += value.down
        if (progress.size === generators.length) sum.neverUp += value.neverUp
        sum.downEvents += value.downEvents
      }
      return sum
    }
    const checkChildren = (): void => {
      const dead = [...generators, activeBalancer].find((child) => !child.alive)
      if (dead !== undefined) throw new Error(`${dead.name} died:\n${dead.stderrText()}`)
    }
    /** Polls `done` every 100 ms until it holds or `timeoutMs` passes; true when it held. */
    const waitUntil = async (done: () => boolean, timeoutMs: number): Promise<boolean> => {
      const deadline = performance.now() + timeoutMs
      for (;;) {
        checkChildren()
        if (done()) return true
        if (performance.now() > deadline) return false
        await sleep(100)
      }
    }
    /** True once nobody is down and no drop was seen for `quietMs`. */
    const quietFor = (quietMs: number, since: number): (() => boolean) => {
      let lastEvents = totals().downEvents
      let lastChange = since
      return () => {
        const current = totals()
        if (current.downEvents !== lastEvents) {
          lastEvents = current.downEvents
          lastChange = now()
        }
        return current.down === 0 && now() - lastChange >= quietMs
      }
    }
    const phases: Phase[] = []
    const beginPhase = (name: string): Phase => {
      for (const generator of generators) generator.send({ type: 'phase', name })
      const phase: Phase = { name, start: now(), end: 0, timedOut: false }
      phases.push(phase)
      return phase
    }
    const settle = async (phase: Phase): Promise<void> => {
      phase.timedOut = !await waitUntil(quietFor(SETTLE_MS, now()), options.phaseTimeoutMs)
      phase.end = now()
    }
    const report = (line: string): void => {
      const t = totals()
      log(`${line} (up ${t.up}, down ${t.down}, never up ${t.neverUp}, drops ${t.downEvents})`)
    }

    // --- ramp: every client connects at once ---------------------------------
    const ramp: Phase = { name: 'ramp', start: now(), end: 0, timedOut: false }
    phases.push(ramp)
    for (const generator of generators) generator.send({ type: 'go' })
    ramp.timedOut = !await waitUntil(() => totals().up === options.clients, options.phaseTimeoutMs)
    ramp.end = now()
    report(`ramp: ${ramp.timedOut ? 'TIMED OUT' : 'all up'} after ${seconds(ramp.end - ramp.start)} s`)
    await settle(beginPhase('settle'))

    /** Signals the victim, then waits until it is gone and every client that dropped is back. */
    const killPhase = async (name: string, victim: GatewayProcess, other: GatewayProcess, signal: 'SIGTERM' | 'SIGKILL'): Promise<Phase> => {
      const phase = beginPhase(name)
      phase.victim = victim.name
      phase.held = await victim.openConnections()
      phase.heldOther = await other.openConnections()
      sampler.sampleNow()
      const signalAt = now()
      phase.signalAt = signalAt
      victim.signal(signal)
      log(`${name}: ${signal} to ${victim.name} (pid ${victim.pid}, ${phase.held ?? '?'} sessions; ${other.name} holds ${phase.heldOther ?? '?'})`)
      const exited = await victim.exited(options.phaseTimeoutMs)
      const life = victim.life
      if (exited && life?.exitedAt !== undefined) {
        phase.victimExitMs = life.exitedAt - signalAt
        phase.victimExit = life.exit
      }
      const remaining = options.phaseTimeoutMs - (now() - signalAt)
      phase.timedOut = !exited || !await waitUntil(quietFor(STABLE_MS, signalAt), remaining)
      phase.end = now()
      report(`${name}: ${phase.timedOut ? 'TIMED OUT' : 'all back'} ${seconds(phase.end - signalAt)} s after the signal; ${victim.name} ${phase.victimExit ?? 'still running'}`)
      return phase
    }

    // --- SIGTERM one instance, bring it back, then SIGKILL the other ------------
    await killPhase('sigterm', gwA, gwB, 'SIGTERM')
    const restart = beginPhase('restart')
    gwA.start()
    sampler.watch(gwA.name, gwA.pid!)
    await gwA.waitReady(START_TIMEOUT_MS)
    log(`restart: ${gwA.name} ready again (pid ${gwA.pid}) after ${seconds(now() - restart.start)} s`)
    await settle(restart)
    await killPhase('sigkill', gwB, gwA, 'SIGKILL')

    // --- finish: stop publishing, let the clients catch up, collect -----------
    const finish = beginPhase('finish')
    const publishing: PublisherReport = await activePublisher.stop()
    publisher = undefined
    const epoch = activePublisher.epoch ?? '?'
    for (const generator of generators) {
      generator.send({ type: 'finish', epoch, published: activePublisher.entries, lastOffsetSeq: activePublisher.lastOffsetSeq })
    }
    const results = await Promise.all(generators.map(async (generator) => await generator.next((message): message is Extract<FromGenerator, { type: 'result' }> => message.type === 'result', 60_000, 'result')))
    finish.end = now()
    const statsId = 1
    activeBalancer.send({ type: 'stats', id: statsId })
    const balancerStats = await activeBalancer.next((message): message is Extract<FromBalancer, { type: 'stats' }> => message.type === 'stats' && message.id === statsId, 5000, 'stats')
    sampler.sampleNow()
    sampler.stop()
    await poller.stop()
    ownLag.disable()
    const orchestratorLag = { p99Ms: ownLag.percentile(99) / 1e6, maxMs: ownLag.max / 1e6 }
    const loadAfter = loadAverage()
    const revisionAfter = gitRevision()

    // --- figures ----------------------------------------------------------------
    const clients: ClientRecord[] = results.flatMap((result) => [...result.clients]).sort((a, b) => a.index - b.index)
    const caughtUp = results.every((result) => result.caughtUp)
    const polls = poller.polls
    const toPerf = (at: number): number => at - performance.timeOrigin
    const seconds0 = (phase: Phase): number => (phase.end - phase.start) / 1000
    const coresOf = (usages: readonly ProcUsage[]): number => usages.reduce((sum, usage) => sum + usage.cpuSeconds, 0)
    const figures: PhaseFigures[] = phases.map((phase) => {
      const tallies = results.reduce((sum, result) => { const t = result.tallies[phase.name]; return t === undefined ? sum : mergeTallies(sum, t) }, emptyTallies())
      const byInstance: Record<string, ReadyzFigures> = {}
      for (const gateway of gateways) byInstance[gateway.name] = readyzFigures(polls, phase.start, phase.end, gateway.name)
      return {
        name: phase.name,
        seconds: (phase.end - phase.start) / 1000,
        timedOut: phase.timedOut,
        ...(phase.name === 'ramp' ? { ramp: rampFigures(clients, phase.start, phase.end) } : {}),
        ...(phase.signalAt === undefined ? {} : { recovery: recoveryFigures(clients, phase.signalAt, phase.end, options.phaseTimeoutMs) }),
        ...(phase.victim === undefined ? {} : { victim: phase.victim, held: phase.held, heldOther: phase.heldOther, victimExitMs: phase.victimExitMs, victimExit: phase.victimExit }),
        tallies,
        machine: sampler.machine(toPerf(phase.start), toPerf(phase.end)),
        runCores: coresOf(sampler.usage(toPerf(phase.start), toPerf(phase.end))) / seconds0(phase),
        gatewayCores: coresOf(sampler.usage(toPerf(phase.start), toPerf(phase.end)).filter((usage) => usage.label.startsWith('gw-'))) / seconds0(phase),
        readyz: readyzFigures(polls, phase.start, phase.end),
        readyzByInstance: byInstance
      }
    })
    const all = results.reduce((sum, result) => Object.values(result.tallies).reduce((inner, t) => mergeTallies(inner, t), sum), emptyTallies())
    const ledger = ledgerTotals(clients)
    const readyzAll = readyzFigures(polls, ramp.start, finish.end)
    const processes = sampler.usage()
    const gatewayProcesses = processes.filter((usage) => usage.label.startsWith('gw-'))
    const finalStatus = clients.reduce<Record<string, number>>((sum, client) => { sum[client.finalStatus] = (sum[client.finalStatus] ?? 0) + 1; return sum }, {})
    const clientsWith = (test: (client: ClientRecord) => boolean): number => clients.filter(test).length
    const ticket429 = all.ticket['429'] ?? 0
    const ticket503 = all.ticket['503'] ?? 0
    const upgrade429 = all.upgrade['429'] ?? 0
    const upgrade503 = all.upgrade['503'] ?? 0

    const byName = (name: string): PhaseFigures | undefined => figures.find((figure) => figure.name === name)
    const rampFig = byName('ramp')?.ramp
    const sigterm = byName('sigterm')?.recovery
    const sigkill = byName('sigkill')?.recovery
    const targets: Target[] = [
      { target: `ramp: all ${options.clients} up within 15 s (t100)`, figure: rampFig === undefined ? '-' : `${seconds(rampFig.t100Ms)} s (${rampFig.never} not up)`, pass: rampFig === undefined ? undefined : rampFig.t100Ms <= TARGET_RAMP_MS },
      { target: 'SIGTERM: 99 % re-established within 10 s', figure: sigterm === undefined || sigterm.affected === 0 ? 'no client affected' : `t99 ${seconds(sigterm.reestablished.t99Ms)} s of ${sigterm.affected}`, pass: sigterm === undefined || sigterm.affected === 0 ? undefined : sigterm.reestablished.t99Ms <= TARGET_SIGTERM_T99_MS },
      { target: 'SIGKILL: 99 % re-established within 15 s', figure: sigkill === undefined || sigkill.affected === 0 ? 'no client affected' : `t99 ${seconds(sigkill.reestablished.t99Ms)} s of ${sigkill.affected}`, pass: sigkill === undefined || sigkill.affected === 0 ? undefined : sigkill.reestablished.t99Ms <= TARGET_SIGKILL_T99_MS },
      { target: `0 lost on ${SHARED_CHANNEL}`, figure: `${ledger.lost} (${ledger.clientsWithLoss} clients)`, pass: ledger.lost === 0 && ledger.clientsWithoutLedger === 0 },
      { target: `0 duplicated on ${SHARED_CHANNEL}`, figure: `${ledger.duplicated} (${ledger.clientsWithDuplicates} clients)`, pass: ledger.duplicated === 0 },
      { target: `0 out of order on ${SHARED_CHANNEL} (§5)`, figure: `${ledger.outOfOrder} (${ledger.clientsOutOfOrder} clients)`, pass: ledger.outOfOrder === 0 },
      { target: '0 × 429 to valid clients (tickets + upgrades)', figure: `${ticket429 + upgrade429} (${clientsWith((client) => client.ticket429 > 0)} clients)`, pass: ticket429 + upgrade429 === 0 },
      { target: '0 × 503 to valid clients (tickets + upgrades)', figure: `${ticket503 + upgrade503} (${clientsWith((client) => client.ticket503 + client.upgrade503 > 0)} clients)`, pass: ticket503 + upgrade503 === 0 },
      { target: '/readyz p99 ≤ 100 ms (all instances, all phases)', figure: `${fmt(readyzAll.p99Ms, 1)} ms (max ${fmt(readyzAll.maxMs, 1)} ms, ${readyzAll.timeouts} timeouts)`, pass: readyzAll.p99Ms <= TARGET_READYZ_P99_MS }
    ]
    const verdict = (pass: boolean | undefined): string => pass === undefined ? 'n/a' : pass ? 'pass' : 'MISS'

    const recoveryRow = (figure: PhaseFigures, target: string): string[] => {
      const recovery = figure.recovery!
      const d = recovery.reestablished
      return [
        `${figure.name} ${figure.victim ?? ''}`, String(recovery.affected), figure.held === undefined ? '?' : String(figure.held),
        seconds(d.t50Ms), seconds(d.t95Ms), seconds(d.t99Ms), seconds(d.t100Ms), String(d.never),
        `${recovery.extraDisconnects} (${recovery.churnedClients} clients)`,
        `${figure.seconds.toFixed(1)}${figure.timedOut ? ' TIMED OUT' : ''}`, target
      ]
    }
    const phaseRows: string[][] = []
    const rampFigure = byName('ramp')!
    const r = rampFigure.ramp!
    phaseRows.push(['ramp (connect all)', String(r.count), '-', seconds(r.t50Ms), seconds(r.t95Ms), seconds(r.t99Ms), seconds(r.t100Ms), String(r.never), '-', `${rampFigure.seconds.toFixed(1)}${rampFigure.timedOut ? ' TIMED OUT' : ''}`, 't100 ≤ 15 s'])
    const sigtermFigure = byName('sigterm')
    if (sigtermFigure?.recovery !== undefined) phaseRows.push(recoveryRow(sigtermFigure, 't99 ≤ 10 s'))
    const sigkillFigure = byName('sigkill')
    if (sigkillFigure?.recovery !== undefined) phaseRows.push(recoveryRow(sigkillFigure, 't99 ≤ 15 s'))

    const processRow = (usage: ProcUsage): string[] => [usage.label, String(usage.pid), usage.watchedSeconds.toFixed(0), usage.cpuSeconds.toFixed(1), usage.avgCpuPercent.toFixed(0), usage.peakCpuPercent.toFixed(0), usage.peakRssMiB.toFixed(0)]
    const lifeEnd = (usage: ProcUsage): string => {
      const life = gateways.flatMap((gateway) => gateway.lives).find((candidate) => candidate.pid === usage.pid)
      return life?.exit ?? 'running at the end'
    }

    const out = [
      '',
      `reconnect avalanche (SPEC §13) — ${revision}; ${cores} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}; load average before ${loadBefore}, after ${loadAfter}`,
      `${options.clients} RealtimeClients (dist/client, ws, fetch) on ${options.generators} generator processes -> round-robin TCP balancer (routing: ${options.routing}) -> gw-a, gw-b (node dist/server/main.js, shipped defaults, NODE_ENV=production) -> redis-server`,
      `each client: user:<sub> + ${SHARED_CHANNEL}; publisher ${options.rate} msg/s on ${SHARED_CHANNEL} via POST /v1/publish through the balancer; phase bound ${options.phaseTimeoutMs / 1000} s${rebuilt ? '; dist/ rebuilt first' : ''}`,
      ...(revisionAfter === revision ? [] : [`WARNING: the tree changed during the run (${revision} -> ${revisionAfter})`]),
      ...(caughtUp ? [] : ['WARNING: some open clients had not received the last message 15 s after the publisher stopped']),
      '',
      'Phases (times in s from the start of the ramp, or from the signal; "never" = not back within the phase bound)',
      table(['phase', 'clients measured', 'held (metric)', 't50', 't95', 't99', 't100', 'not back', 'extra drops', 'phase s', 'target'], phaseRows),
      '',
      ...[sigtermFigure, sigkillFigure].flatMap((figure) => figure === undefined
        ? []
        : [`${figure.name}: ${figure.victim ?? '?'} held ${figure.held ?? '?'} sessions (other instance ${figure.heldOther ?? '?'}); it ended ${figure.victimExit ?? '?'} ${figure.victimExitMs === undefined ? '' : `${seconds(figure.victimExitMs)} s after the signal`}`]),
      '',
      'Answers the clients got, by phase (counted at the clients: the SDK\'s fetch and ws)',
      table(['phase', 'ticket requests', '200', '429', '503', 'other HTTP', 'fetch failed', 'upgrades refused', 'sockets', 'close codes', 'SDK errors'], figures.map((figure) => {
        const t = figure.tallies.ticket
        const requests = Object.values(t).reduce((sum, value) => sum + value, 0)
        const failed = Object.fromEntries(Object.entries(t).filter(([key]) => !/^\d+$/.test(key)))
        const other = Object.entries(t).filter(([key]) => /^\d+$/.test(key) && !['200', '429', '503'].includes(key)).reduce((sum, [, value]) => sum + value, 0)
        return [figure.name, String(requests), String(t['200'] ?? 0), String(t['429'] ?? 0), String(t['503'] ?? 0), String(other), tallyText(failed), tallyText(figure.tallies.upgrade), String(figure.tallies.sockets), tallyText(figure.tallies.close), tallyText(figure.tallies.error)]
      })),
      `clients open at the end with a channel not subscribed: ${clientsWith((client) => client.missingChannels.length > 0)} (${SHARED_CHANNEL}: ${clientsWith((client) => client.missingChannels.includes(SHARED_CHANNEL))}, user:<sub>: ${clientsWith((client) => client.missingChannels.some((channel) => channel.startsWith('user:')))}); final status ${tallyText(finalStatus)}`,
      `clients that got a 429 on /ws-ticket: ${clientsWith((client) => client.ticket429 > 0)}; a 503: ${clientsWith((client) => client.ticket503 > 0)}; a 503 on the upgrade: ${clientsWith((client) => client.upgrade503 > 0)}; ticket requests per client: max ${Math.max(0, ...clients.map((client) => client.ticketRequests))}`,
      '',
      `Ledger of ${SHARED_CHANNEL} per client (from its first subscribe to the end; recovered:false gaps counted apart)`,
      table(['published (200)', 'publish failures', 'clients', 'expected', 'received', 'lost', 'duplicated', 'out of order', 'skipped after recovered:false', 'unconfirmed'], [[
        String(publishing.published), String(publishing.failed.length), `${ledger.clientsWithLedger}${ledger.clientsWithoutLedger > 0 ? ` (+${ledger.clientsWithoutLedger} never subscribed)` : ''}`,
        String(ledger.expected), String(ledger.received), `${ledger.lost} (${ledger.clientsWithLoss} clients)`, `${ledger.duplicated} (${ledger.clientsWithDuplicates})`,
        `${ledger.outOfOrder} (${ledger.clientsOutOfOrder})`, `${ledger.skippedRecoveredFalse} (${ledger.clientsRecoveredFalse} clients)`, String(ledger.unconfirmed)
      ]]),
      `publisher: ${publishing.published} in ${publishing.seconds.toFixed(1)} s (${publishing.achievedRate.toFixed(1)}/s), attempts ${tallyText(publishing.attempts)}, longest gap between publishes ${fmt(publishing.maxGapMs, 0)} ms, p99 ${fmt(publishing.p99LatencyMs, 1)} ms, max ${fmt(publishing.maxLatencyMs, 1)} ms${ledger.clientsForeignEpoch > 0 ? `; ${ledger.clientsForeignEpoch} clients saw another epoch` : ''}`,
      '',
      'Machine CPU by phase, in cores (this run = the processes below; others = everything else on the machine: noise in every figure)',
      table(['phase', 'seconds', 'machine busy', 'peak (1 s)', 'this run', 'gateways', 'others'], figures.map((figure) => [
        figure.name, figure.seconds.toFixed(1), fmt(figure.machine.avgBusyCores, 2), fmt(figure.machine.peakBusyCores, 2), fmt(Number.isNaN(figure.machine.avgBusyCores) ? Number.NaN : figure.runCores, 2), fmt(Number.isNaN(figure.machine.avgBusyCores) ? Number.NaN : figure.gatewayCores, 2), fmt(Number.isNaN(figure.machine.avgBusyCores) ? Number.NaN : Math.max(0, figure.machine.avgBusyCores - figure.runCores), 2)
      ])),
      '',
      `Processes (CPU % of one core; peak over ~1 s windows sampled every ${SAMPLE_INTERVAL_MS} ms from /proc)`,
      table(['process', 'pid', 'watched s', 'CPU s', 'avg CPU %', 'peak CPU %', 'peak RSS MiB', 'end'], [
        ...gatewayProcesses.map((usage) => [...processRow(usage), lifeEnd(usage)]),
        ...processes.filter((usage) => !usage.label.startsWith('gw-')).map((usage) => [...processRow(usage), ''])
      ]),
      '',
      `/readyz polled directly on each instance every ${READYZ_INTERVAL_MS} ms (fresh connection, 1 s timeout counted as 1000 ms)`,
      table(['phase', 'instance', 'polls', '200', '503', 'refused', 'timeouts', 'p50 ms', 'p99 ms', 'max ms'], figures.flatMap((figure) => Object.entries(figure.readyzByInstance).filter(([, readyz]) => readyz.polls > 0).map(([instance, readyz]) => [
        figure.name, instance, String(readyz.polls), String(readyz.ok), String(readyz.notReady), String(readyz.refused), String(readyz.timeouts), fmt(readyz.p50Ms, 1), fmt(readyz.p99Ms, 1), fmt(readyz.maxMs, 1)
      ]))),
      `the orchestrator's own event-loop delay (it times the polls): p99 ${orchestratorLag.p99Ms.toFixed(1)} ms, max ${orchestratorLag.maxMs.toFixed(1)} ms`,
      `balancer: ${balancerStats.backends.map((backend: BackendStats) => `${backend.name} accepted ${backend.accepted} (failed connects ${backend.failedConnects}, active at the end ${backend.active})`).join('; ')}; refused ${balancerStats.refused}`,
      '',
      `Targets (SPEC §13) — ${options.clients} clients on ${cores} cores`,
      table(['target', 'figure', 'result'], targets.map((target) => [target.target, target.figure, verdict(target.pass)])),
      `total runtime ${((now() - phases[0]!.start) / 1000).toFixed(1)} s of phases`
    ]
    console.log(out.join('\n'))

    // The slowest and the damaged clients, with their timelines, for the JSON.
    const relative = (at: number): number => Math.round(at - ramp.start)
    const damaged = clients.filter((client) => client.ledger === undefined || client.ledger.lost > 0 || client.ledger.duplicated > 0 || client.ledger.outOfOrder > 0 || client.ups.length === 0 || client.missingChannels.length > 0)
    const lastUp = (client: ClientRecord): number => client.ups[client.ups.length - 1] ?? Number.MAX_SAFE_INTEGER
    const mostDisconnected = [...clients].sort((a, b) => b.downs.length - a.downs.length || lastUp(b) - lastUp(a)).slice(0, 10)
    const timeline = (client: ClientRecord): Record<string, unknown> => ({ ...client, ups: client.ups.map(relative), downs: client.downs.map(relative) })

    const file = join(RESULTS_DIR, `avalanche-${stamp}.json`)
    writeFileSync(file, `${JSON.stringify({
      benchmark: 'avalanche',
      date: new Date().toISOString(),
      revision,
      revisionAfter,
      cores,
      cpu: cpus()[0]?.model,
      node: process.version,
      loadAverage: { before: loadBefore, after: loadAfter },
      settings: { ...options, sharedChannel: SHARED_CHANNEL, readyzIntervalMs: READYZ_INTERVAL_MS, stableMs: STABLE_MS, settleMs: SETTLE_MS, gatewayEnv: { ...env, JWT_SECRET: '(fixed bench secret)' } },
      topology: {
        redis: { port: redis.port },
        gateways: gateways.map((gateway) => ({ name: gateway.name, port: gateway.port, logFile: gateway.logFile, lives: gateway.lives })),
        balancer: { port: listening.port, stats: balancerStats }
      },
      phases: phases.map((phase, i) => ({ ...phase, figures: figures[i] })),
      targets,
      tallies: all,
      ledger,
      publisher: { ...publishing, failed: publishing.failed.slice(0, 100) },
      readyz: { ...readyzAll, orchestratorEventLoopDelay: orchestratorLag },
      processes,
      clients: {
        caughtUp,
        ticketRequests: distribution(clients.map((client) => client.ticketRequests)),
        finalStatus,
        missingChannels: clientsWith((client) => client.missingChannels.length > 0),
        damaged: damaged.length,
        damagedExamples: damaged.slice(0, 50).map(timeline),
        mostDisconnected: mostDisconnected.map(timeline)
      }
    }, null, 2)}\n`)
    log(`results written to ${file}; gateway logs: ${gateways.map((gateway) => gateway.logFile).join(', ')}`)
    return 0
  } catch (err) {
    // After Ctrl-C the run fails on the children being stopped: not news.
    if (interrupted) return 130
    log(`avalanche failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`)
    return 1
  } finally {
    await cleanup()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
