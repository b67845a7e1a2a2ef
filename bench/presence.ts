/**
 * Presence benchmark (SPEC §11, issue 12): two gateway instances on one redis-server,
 * one presence channel. Loopback only. See docs/benchmarks.md "Presence (issue 12)".
 *
 *   npm run bench -- presence                    # 1000 members (~1 min)
 *   npm run bench -- presence --members 200      # a small run
 *
 * Phases:
 *  1. join: N members (distinct users, half on each instance) connect, then all send
 *     `subscribe` at once; an observer on each instance times every `join` frame from
 *     the member's subscribe send (one clock: this process) and counts them (N each,
 *     exactly once per user). Redis and gateway CPU over the phase ÷ N.
 *  2. query at N members: 100 sequential `presence` frames on a socket, and 100
 *     sequential GET /v1/presence?channel= (scope gateway:presence); totalUsers checked.
 *  3. round trips: K extra users join and then leave the channel with a MONITOR
 *     connection open; top-level commands (not the ones run inside scripts) that touch
 *     the channel's presence keys or the due index, ÷ K. Separate from phase 1 so
 *     MONITOR's own cost stays out of the CPU figures.
 *  4. rolling restart: SIGTERM instance B (its clients get 1012 and reconnect at once to
 *     A with a new ticket, then resubscribe), start B again; join/leave frames seen by
 *     the observer on A from the SIGTERM until the leave delay (+ 2 s) after B is back.
 *
 * Everything it starts (redis-server on a free port, two gateway children) is stopped
 * by pid at the end, also on an error or Ctrl-C.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import { mintDevToken } from '../src/server/dev/dev-token.js'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild, procCpuMicros } from './lib/child.js'
import { JWT_SECRET, WS_PATH, fmt, gatewayEnv, gitRevision, log, table } from './lib/setup.js'

const CHANNEL = 'bench:presence'
const LEAVE_DELAY_MS = 3000
const QUERIES = 100
const PROBE_USERS = 50
const CONNECT_CONCURRENCY = 50
const FRAME_TIMEOUT_MS = 15_000
const BUDGET_MS = 120_000
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

/** Issue 12 targets. */
const TARGET_QUERY_P99_MS = 20
const TARGET_ROUND_TRIPS = 2

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

function percentile (values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

async function waitUntil (check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(10)
  }
}

interface Frame {
  readonly type?: string
  readonly channel?: string
  readonly userId?: string
  readonly id?: unknown
  readonly code?: string
  readonly totalUsers?: number
}

async function ticket (port: number, token: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  const body = await response.text()
  if (response.status !== 200) throw new Error(`ticket: HTTP ${response.status} ${body.slice(0, 200)}`)
  return (JSON.parse(body) as { ticket: string }).ticket
}

/** A client socket, open once `session_established` has arrived; frames go to `onFrame`. */
class Client {
  readonly userId: string
  readonly token: string
  socket: WebSocket | undefined
  port = 0
  onFrame: (frame: Frame, at: number) => void = () => {}
  onClose: (code: number) => void = () => {}
  /** Members count the join/leave frames they get (every subscriber gets every join) without parsing them. */
  skipJoinLeave = false
  joinLeaveFrames = 0

  constructor (userId: string, token: string) {
    this.userId = userId
    this.token = token
  }

  async open (port: number): Promise<void> {
    const socket = new WebSocket(`ws://127.0.0.1:${port}${WS_PATH}?ticket=${await ticket(port, this.token)}`)
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { fail(new Error('session_established timed out')) }, FRAME_TIMEOUT_MS)
      const fail = (err: Error): void => { clearTimeout(timer); socket.terminate(); reject(err) }
      socket.once('error', fail)
      socket.once('close', (code) => { fail(new Error(`closed ${code} before session_established`)) })
      socket.once('message', (data) => {
        const frame = JSON.parse(data.toString()) as Frame
        if (frame.type !== 'session_established') { fail(new Error(`first frame ${frame.type ?? '?'} ${frame.code ?? ''}`)); return }
        clearTimeout(timer)
        socket.removeAllListeners('error')
        socket.removeAllListeners('close')
        resolve()
      })
    })
    this.socket = socket
    this.port = port
    socket.on('error', () => { /* seen through close */ })
    socket.on('message', (data) => {
      const at = performance.now()
      const text = data.toString()
      if (this.skipJoinLeave && (text.startsWith('{"type":"join"') || text.startsWith('{"type":"leave"'))) { this.joinLeaveFrames++; return }
      this.onFrame(JSON.parse(text) as Frame, at)
    })
    socket.on('close', (code) => { if (this.socket === socket) this.onClose(code) })
  }

  send (frame: Record<string, unknown>): void {
    this.socket?.send(JSON.stringify(frame))
  }

  async close (): Promise<void> {
    const socket = this.socket
    this.socket = undefined
    if (socket === undefined || socket.readyState === WebSocket.CLOSED) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { socket.terminate(); resolve() }, 3000)
      socket.once('close', () => { clearTimeout(timer); resolve() })
      socket.close()
    })
  }
}

/** Subscribes and waits for the `subscribed` answer (id 's'). */
async function subscribe (client: Client, channel: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const previous = client.onFrame
    const timer = setTimeout(() => { client.onFrame = previous; reject(new Error(`${client.userId}: subscribe ${channel} timed out`)) }, FRAME_TIMEOUT_MS)
    client.onFrame = (frame, at) => {
      if (frame.id === `s:${channel}`) {
        clearTimeout(timer)
        client.onFrame = previous
        if (frame.type === 'subscribed') resolve()
        else reject(new Error(`${client.userId}: subscribe ${channel}: ${frame.type ?? '?'} ${frame.code ?? ''}`))
        return
      }
      previous(frame, at)
    }
    client.send({ type: 'subscribe', channel, id: `s:${channel}` })
  })
}

/** Join/leave frames of the bench channel seen by one observer. */
class Observer {
  readonly client: Client
  readonly joins = new Map<string, number[]>()
  readonly events: Array<{ readonly type: 'join' | 'leave', readonly userId: string, readonly at: number }> = []
  #pending = new Map<string, (frame: Frame) => void>()
  #nextId = 1

  constructor (client: Client) {
    this.client = client
    client.onFrame = (frame, at) => {
      if (typeof frame.id === 'string' && this.#pending.has(frame.id)) {
        const resolve = this.#pending.get(frame.id)!
        this.#pending.delete(frame.id)
        resolve(frame)
        return
      }
      if ((frame.type === 'join' || frame.type === 'leave') && frame.channel === CHANNEL && typeof frame.userId === 'string') {
        this.events.push({ type: frame.type, userId: frame.userId, at })
        if (frame.type === 'join') {
          const times = this.joins.get(frame.userId) ?? []
          times.push(at)
          this.joins.set(frame.userId, times)
        }
      }
    }
  }

  count (type: 'join' | 'leave', from: number, to = Number.POSITIVE_INFINITY, users?: ReadonlySet<string>): number {
    return this.events.filter((e) => e.type === type && e.at >= from && e.at <= to && (users === undefined || users.has(e.userId))).length
  }

  async query (): Promise<Frame> {
    const id = `q${this.#nextId++}`
    return await new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => { this.#pending.delete(id); reject(new Error('presence query timed out')) }, FRAME_TIMEOUT_MS)
      this.#pending.set(id, (frame) => { clearTimeout(timer); resolve(frame) })
      this.client.send({ type: 'presence', channel: CHANNEL, id })
    })
  }
}

async function inBatches<T> (items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!)
  }))
}

async function commandCalls (redis: Redis): Promise<Record<string, number>> {
  const text = await redis.info('commandstats')
  const calls: Record<string, number> = {}
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[match[1]!] = Number(match[2])
  return calls
}

/** redis-server's own getrusage (INFO cpu, all threads), microseconds: finer than /proc's 10 ms ticks. */
async function redisCpuMicros (redis: Redis): Promise<number> {
  const text = await redis.info('cpu')
  const field = (name: string): number => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(text)?.[1] ?? Number.NaN)
  return Math.round((field('used_cpu_user') + field('used_cpu_sys')) * 1e6)
}

function delta (before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [name, calls] of Object.entries(after)) {
    const d = calls - (before[name] ?? 0)
    if (d > 0) out[name] = d
  }
  return out
}

/** Top-level commands (not those run inside scripts) touching the channel's presence keys or the due index. */
class MonitorCount {
  byCommand: Record<string, number> = {}
  total = 0
  counting = false

  touches (args: readonly string[]): boolean {
    return args.some((arg) => arg.includes(`{ch:${CHANNEL}}:presence`) || arg.endsWith('presence:due'))
  }

  record (args: readonly string[], source: string): void {
    if (!this.counting || source === 'lua' || !this.touches(args)) return
    const name = (args[0] ?? '?').toLowerCase()
    // The periodic sweep poll of the due index runs whether or not anyone joins or leaves.
    if (name === 'zrangebyscore') return
    this.byCommand[name] = (this.byCommand[name] ?? 0) + 1
    this.total++
  }

  reset (): void {
    this.byCommand = {}
    this.total = 0
  }
}

function bounded (name: string, value: string | undefined, min: number, max: number): number {
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new Error(`--${name} must be an integer in [${min}, ${max}]`)
  return parsed
}

export async function runPresence (argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      members: { type: 'string', default: '1000' },
      'log-level': { type: 'string', default: 'info' }
    }
  })
  const members = bounded('members', values.members, 2, 5000)
  const logLevel = values['log-level'] ?? 'info'
  const started = performance.now()
  const revision = gitRevision()
  log(`realtime-gateway presence bench at ${revision}: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}; ${members} members`)

  const env: Record<string, string> = {
    ...gatewayEnv('', logLevel),
    PRESENCE_CHANNELS: CHANNEL,
    PRESENCE_LEAVE_DELAY_MS: String(LEAVE_DELAY_MS),
    // Refresh runs every TTL/3: long enough that no refresh burst lands inside a measured phase.
    PRESENCE_TTL_SECONDS: '600',
    // 100 sequential presence queries on one socket are not a flood.
    WS_MESSAGE_RATE_PER_SECOND: '100000',
    WS_MESSAGE_BURST: '100000',
    // The drain spreads its 1012 closes over 40 % of this: 0.8 s, well inside the leave delay.
    SHUTDOWN_GRACE_MS: '2000'
  }
  let redis: RedisServer | undefined
  let admin: Redis | undefined
  let monitor: Awaited<ReturnType<Redis['monitor']>> | undefined
  const gateways: ServerChild[] = []
  const clients: Client[] = []
  const stopAll = async (): Promise<void> => {
    await Promise.all(clients.map(async (client) => { await client.close() }))
    monitor?.disconnect()
    admin?.disconnect()
    await Promise.all(gateways.map(async (child) => { await child.stop() }))
    await redis?.stop()
  }
  const onSigint = (): void => { void stopAll().finally(() => { process.exit(130) }) }
  process.once('SIGINT', onSigint)

  try {
    redis = await RedisServer.start()
    const redisPid = redis.pid
    if (redisPid === undefined) throw new Error('redis-server has no pid')
    env.REDIS_URL = redis.url
    admin = new Redis(redis.url, { lazyConnect: false, maxRetriesPerRequest: 1 })
    const a = await ServerChild.start('gateway-a', 'gateway.ts', env)
    gateways.push(a)
    let b = await ServerChild.start('gateway-b', 'gateway.ts', env)
    gateways.push(b)
    log(`redis-server pid ${redisPid} port ${redis.port}; gateway a pid ${a.pid} port ${a.port}; gateway b pid ${b.pid} port ${b.port}`)

    const mint = async (sub: string): Promise<string> => await mintDevToken({ secret: JWT_SECRET, sub, sessionId: `${sub}-session`, channels: ['bench:*'], expiresIn: '1h' })
    const serviceToken = await mintDevToken({ secret: JWT_SECRET, sub: 'bench-backend', scope: 'gateway:presence', expiresIn: '1h' })

    // Observers first (they are present too: totalUsers counts them).
    const observerA = new Observer(new Client('observer-a', await mint('observer-a')))
    const observerB = new Observer(new Client('observer-b', await mint('observer-b')))
    for (const [observer, child] of [[observerA, a], [observerB, b]] as const) {
      clients.push(observer.client)
      await observer.client.open(child.port)
      await subscribe(observer.client, CHANNEL)
    }

    // ---------------------------------------------------------------- 1. join
    const memberClients: Client[] = []
    for (let i = 0; i < members; i++) {
      const id = `member-${String(i).padStart(5, '0')}`
      const member = new Client(id, await mint(id))
      member.skipJoinLeave = true
      memberClients.push(member)
    }
    const memberIds = new Set(memberClients.map((c) => c.userId))
    const connectStart = performance.now()
    await inBatches(memberClients.map((client, i) => ({ client, i })), CONNECT_CONCURRENCY, async ({ client, i }) => {
      clients.push(client)
      await client.open(i % 2 === 0 ? a.port : b.port)
    })
    log(`join: ${members} members connected (half on each instance) in ${((performance.now() - connectStart) / 1000).toFixed(1)} s; subscribing all at once`)
    await sleep(1000)

    const subscribedAt = new Map<string, number>()
    let subscribed = 0
    let subscribeFailure: string | undefined
    const subscribeErrors: Record<string, number> = {}
    for (const client of memberClients) {
      client.onFrame = (frame) => {
        if (frame.id !== `s:${CHANNEL}`) return
        if (frame.type === 'subscribed') subscribed++
        else {
          subscribeFailure ??= `${frame.type ?? '?'} ${frame.code ?? ''}`
          subscribeErrors[frame.code ?? '?'] = (subscribeErrors[frame.code ?? '?'] ?? 0) + 1
        }
      }
    }
    const statsBefore = await commandCalls(admin)
    const gatewayCpuBefore = await Promise.all([a.cpu(), b.cpu()])
    const redisCpuBefore = procCpuMicros(redisPid)
    const redisInfoCpuBefore = await redisCpuMicros(admin)
    const joinStart = performance.now()
    for (const client of memberClients) {
      subscribedAt.set(client.userId, performance.now())
      client.send({ type: 'subscribe', channel: CHANNEL, id: `s:${CHANNEL}` })
    }
    const seen = (observer: Observer): number => [...memberIds].filter((id) => observer.joins.has(id)).length
    await waitUntil(() => subscribed + Object.values(subscribeErrors).reduce((sum, n) => sum + n, 0) >= members && seen(observerA) === members && seen(observerB) === members, 30_000, 'every join frame at both observers')
      .catch((err: Error) => { log(`join: ${err.message} (subscribed ${subscribed}, observer a ${seen(observerA)}, observer b ${seen(observerB)})`) })
    const joinSeconds = (performance.now() - joinStart) / 1000
    const redisCpuJoin = await redisCpuMicros(admin) - redisInfoCpuBefore
    const redisProcCpuJoin = procCpuMicros(redisPid) - redisCpuBefore
    const gatewayCpuAfter = await Promise.all([a.cpu(), b.cpu()])
    const statsJoin = delta(statsBefore, await commandCalls(admin))
    const gatewayCpuJoin = gatewayCpuAfter.reduce((sum, after, i) => sum + (after.user + after.system) - (gatewayCpuBefore[i]!.user + gatewayCpuBefore[i]!.system), 0)
    await sleep(500) // late duplicates, if any

    const memberJoinFrames = memberClients.reduce((sum, c) => sum + c.joinLeaveFrames, 0)
    const joinFigures = [observerA, observerB].map((observer, i) => {
      const latencies: number[] = []
      let duplicated = 0
      let received = 0
      for (const id of memberIds) {
        const times = observer.joins.get(id)
        if (times === undefined) continue
        received += times.length
        duplicated += times.length - 1
        latencies.push(times[0]! - subscribedAt.get(id)!)
      }
      return { observer: i === 0 ? 'a' : 'b', expected: members, received, distinct: latencies.length, duplicated, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: percentile(latencies, 100) }
    })
    const joinsExact = joinFigures.every((j) => j.distinct === members && j.duplicated === 0)
    log(`join: ${subscribed}/${members} subscribed in ${joinSeconds.toFixed(2)} s; observer a ${joinFigures[0]!.received} joins, observer b ${joinFigures[1]!.received}${subscribeFailure === undefined ? '' : `; first failure ${subscribeFailure}`}`)

    // ---------------------------------------------------------------- 2. query
    const expectedUsers = members + 2
    const wsLatencies: number[] = []
    const wsTotals = new Set<number>()
    for (let q = 0; q < QUERIES; q++) {
      const t0 = performance.now()
      const answer = await observerA.query()
      wsLatencies.push(performance.now() - t0)
      wsTotals.add(answer.totalUsers ?? -1)
    }
    const httpLatencies: number[] = []
    const httpTotals = new Set<number>()
    const httpUrl = `http://127.0.0.1:${a.port}/v1/presence?channel=${encodeURIComponent(CHANNEL)}`
    for (let q = 0; q < QUERIES; q++) {
      const t0 = performance.now()
      const response = await fetch(httpUrl, { headers: { authorization: `Bearer ${serviceToken}` } })
      const body = await response.json() as Frame
      httpLatencies.push(performance.now() - t0)
      httpTotals.add(response.status === 200 ? (body.totalUsers ?? -1) : -response.status)
    }
    const query = {
      ws: { p50Ms: percentile(wsLatencies, 50), p99Ms: percentile(wsLatencies, 99), totalUsers: [...wsTotals] },
      http: { p50Ms: percentile(httpLatencies, 50), p99Ms: percentile(httpLatencies, 99), totalUsers: [...httpTotals] },
      expectedUsers
    }
    const queryCountsRight = [...wsTotals, ...httpTotals].every((total) => total === expectedUsers)
    log(`query: ws p99 ${fmt(query.ws.p99Ms, 2)} ms, http p99 ${fmt(query.http.p99Ms, 2)} ms; totalUsers ws ${[...wsTotals].join(',')} http ${[...httpTotals].join(',')} (expected ${expectedUsers}: ${members} members + 2 observers)`)

    // ---------------------------------------------------------------- 3. round trips (MONITOR)
    const probes: Client[] = []
    for (let i = 0; i < PROBE_USERS; i++) {
      const id = `probe-${String(i).padStart(3, '0')}`
      probes.push(new Client(id, await mint(id)))
    }
    const probeIds = new Set(probes.map((p) => p.userId))
    await inBatches(probes.map((client, i) => ({ client, i })), CONNECT_CONCURRENCY, async ({ client, i }) => {
      clients.push(client)
      await client.open(i % 2 === 0 ? a.port : b.port)
    })
    const counter = new MonitorCount()
    monitor = await admin.monitor()
    monitor.on('monitor', (_time: string, args: string[], source: string) => { counter.record(args, source) })
    await sleep(300)
    counter.counting = true
    const probeJoinFrom = performance.now()
    await Promise.all(probes.map(async (probe) => { await subscribe(probe, CHANNEL) }))
    await waitUntil(() => observerA.count('join', probeJoinFrom, Number.POSITIVE_INFINITY, probeIds) >= PROBE_USERS, FRAME_TIMEOUT_MS, 'probe joins')
    await sleep(300)
    const joinTrips = { total: counter.total, byCommand: { ...counter.byCommand }, perJoin: counter.total / PROBE_USERS }
    counter.reset()
    const probeLeaveFrom = performance.now()
    for (const probe of probes) probe.send({ type: 'unsubscribe', channel: CHANNEL, id: `u:${CHANNEL}` })
    await waitUntil(() => observerA.count('leave', probeLeaveFrom, Number.POSITIVE_INFINITY, probeIds) >= PROBE_USERS, LEAVE_DELAY_MS + FRAME_TIMEOUT_MS, 'probe leaves')
    const leaveLatencyMs = Math.max(...observerA.events.filter((e) => e.type === 'leave' && probeIds.has(e.userId) && e.at >= probeLeaveFrom).map((e) => e.at - probeLeaveFrom))
    await sleep(300)
    const leaveTrips = { total: counter.total, byCommand: { ...counter.byCommand }, perLeave: counter.total / PROBE_USERS, lastLeaveAfterMs: leaveLatencyMs }
    counter.counting = false
    monitor.disconnect()
    monitor = undefined
    await Promise.all(probes.map(async (probe) => { await probe.close() }))
    log(`round trips: ${fmt(joinTrips.perJoin, 2)} per join ${JSON.stringify(joinTrips.byCommand)}, ${fmt(leaveTrips.perLeave, 2)} per leave ${JSON.stringify(leaveTrips.byCommand)}`)
    await sleep(1000)

    // ---------------------------------------------------------------- 4. rolling restart of b
    const onB = [observerB.client, ...memberClients.filter((c) => c.port === b.port)]
    let reconnected = 0
    let reconnectFailure: string | undefined
    const closeCodes = new Map<number, number>()
    for (const client of onB) {
      client.onClose = (code) => {
        closeCodes.set(code, (closeCodes.get(code) ?? 0) + 1)
        if (code !== 1012) return
        void (async () => {
          await client.open(a.port)
          await subscribe(client, CHANNEL)
          reconnected++
        })().catch((err: Error) => { reconnectFailure ??= `${client.userId}: ${err.message}` })
      }
    }
    // observer b's frames would now go to the Observer handler; it is just a member from here.
    const restartFrom = performance.now()
    const oldB = b
    process.kill(oldB.pid, 'SIGTERM')
    const exitDeadline = performance.now() + 15_000
    while (performance.now() < exitDeadline) {
      try { process.kill(oldB.pid, 0) } catch { break }
      await sleep(20)
    }
    await oldB.stop() // no-op once it has exited; IPC stop, then SIGKILL by pid, otherwise
    const bDownMs = performance.now() - restartFrom
    b = await ServerChild.start('gateway-b', 'gateway.ts', env)
    gateways.push(b)
    const bBackMs = performance.now() - restartFrom
    await waitUntil(() => reconnected + (reconnectFailure === undefined ? 0 : 1) >= onB.length, FRAME_TIMEOUT_MS, 'every client of b back on a')
      .catch((err: Error) => { log(`rolling restart: ${err.message}`) })
    const allBackMs = performance.now() - restartFrom
    // Anything the restart would cause (a leave after the delay, a join on return) is visible by now.
    await sleep(LEAVE_DELAY_MS + 2000)
    const restart = {
      clientsOnB: onB.length,
      closeCodes: Object.fromEntries(closeCodes),
      reconnected,
      ...(reconnectFailure === undefined ? {} : { firstFailure: reconnectFailure }),
      bExitedAfterMs: bDownMs,
      bBackAfterMs: bBackMs,
      allClientsBackAfterMs: allBackMs,
      windowMs: performance.now() - restartFrom,
      joins: observerA.count('join', restartFrom),
      leaves: observerA.count('leave', restartFrom)
    }
    log(`rolling restart: b exited after ${(bDownMs / 1000).toFixed(1)} s, back after ${(bBackMs / 1000).toFixed(1)} s; ${reconnected}/${onB.length} clients back on a; observer a saw ${restart.joins} join, ${restart.leaves} leave`)

    // ---------------------------------------------------------------- report
    const joinRow = (j: typeof joinFigures[number]): string[] => [`join fan-out to observer ${j.observer}`, `${fmt(j.p50Ms, 1)} / ${fmt(j.p99Ms, 1)} ms (max ${fmt(j.maxMs, 1)})`, `${j.distinct}/${j.expected} users, ${j.duplicated} duplicated`, 'exactly N, once each', j.distinct === j.expected && j.duplicated === 0 ? 'MET' : 'NOT MET']
    const met = (ok: boolean): string => ok ? 'MET' : 'NOT MET'
    const queryOk = query.ws.p99Ms <= TARGET_QUERY_P99_MS && query.http.p99Ms <= TARGET_QUERY_P99_MS
    const tripsOk = joinTrips.perJoin <= TARGET_ROUND_TRIPS && leaveTrips.perLeave <= TARGET_ROUND_TRIPS
    const restartOk = restart.joins === 0 && restart.leaves === 0 && reconnected === onB.length
    const evalsha = (statsJoin.evalsha ?? 0) + (statsJoin.eval ?? 0)
    const rows: string[][] = [
      ...joinFigures.map(joinRow),
      [`${members} joins at once`, `${joinSeconds.toFixed(2)} s to the last join frame`, `${subscribed}/${members} subscribed${subscribeFailure === undefined ? '' : ` (refused: ${JSON.stringify(subscribeErrors)})`}; ${memberJoinFrames} join frames delivered to the members themselves (every subscriber gets every later join: ~N²/2)`, '-', '-'],
      ['Redis CPU per join', `${fmt(redisCpuJoin / members, 1)} µs`, `INFO cpu delta ÷ N (/proc/<pid>/stat: ${fmt(redisProcCpuJoin / members, 1)} µs, 10 ms ticks); EVALSHA ${fmt(evalsha / members, 2)}/join, all commands incl. in scripts ${fmt(Object.values(statsJoin).reduce((s, n) => s + n, 0) / members, 2)}/join`, '-', '-'],
      ['gateway CPU per join (a + b)', `${fmt(gatewayCpuJoin / members, 0)} µs`, 'subscribe + presence enter + join fan-out to 2 observers', '-', '-'],
      [`presence frame, ${QUERIES} sequential`, `${fmt(query.ws.p50Ms, 2)} / ${fmt(query.ws.p99Ms, 2)} ms`, `totalUsers ${[...wsTotals].join(',')} (expected ${expectedUsers})`, `p99 <= ${TARGET_QUERY_P99_MS} ms`, met(query.ws.p99Ms <= TARGET_QUERY_P99_MS)],
      [`GET /v1/presence, ${QUERIES} sequential`, `${fmt(query.http.p50Ms, 2)} / ${fmt(query.http.p99Ms, 2)} ms`, `totalUsers ${[...httpTotals].join(',')} (expected ${expectedUsers})`, `p99 <= ${TARGET_QUERY_P99_MS} ms`, met(query.http.p99Ms <= TARGET_QUERY_P99_MS)],
      [`Redis round trips per join (${PROBE_USERS} users, MONITOR)`, fmt(joinTrips.perJoin, 2), Object.entries(joinTrips.byCommand).map(([k, v]) => `${k} ${v}`).join(', '), `<= ${TARGET_ROUND_TRIPS}`, met(joinTrips.perJoin <= TARGET_ROUND_TRIPS)],
      [`Redis round trips per leave (${PROBE_USERS} users, MONITOR)`, fmt(leaveTrips.perLeave, 2), `${Object.entries(leaveTrips.byCommand).map(([k, v]) => `${k} ${v}`).join(', ')}; last leave ${fmt(leaveLatencyMs, 0)} ms after unsubscribe`, `<= ${TARGET_ROUND_TRIPS}`, met(leaveTrips.perLeave <= TARGET_ROUND_TRIPS)],
      ['rolling restart of b: join/leave at observer a', `${restart.joins} join, ${restart.leaves} leave`, `${reconnected}/${onB.length} clients of b back on a after ${fmt(allBackMs / 1000, 1)} s; b back after ${fmt(bBackMs / 1000, 1)} s; window ${fmt(restart.windowMs / 1000, 1)} s`, '0 join, 0 leave', met(restartOk)]
    ]
    const clean = joinsExact && queryCountsRight && subscribeFailure === undefined && reconnectFailure === undefined
    const out = [
      '',
      `realtime-gateway presence — ${revision}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`,
      `${members} members (distinct users, half on each of 2 instances) + 2 observers on ${CHANNEL}; PRESENCE_LEAVE_DELAY_MS=${LEAVE_DELAY_MS}, LOG_LEVEL=${logLevel}; redis-server ${redis.port}, loopback`,
      '',
      table(['figure', 'p50 / p99 or value', 'detail', 'target', 'met'], rows, 1),
      '',
      `targets: query p99 <= ${TARGET_QUERY_P99_MS} ms ${met(queryOk)}; <= ${TARGET_ROUND_TRIPS} round trips per join or leave ${met(tripsOk)}; 0 join/leave during the rolling restart ${met(restartOk)}${clean ? '' : '; WARNING: not a clean run (missing/duplicate joins, wrong totalUsers or failures)'}`,
      `total runtime ${((performance.now() - started) / 1000).toFixed(1)} s`
    ]
    console.log(out.join('\n'))
    if (!clean) for (const child of [a, b]) console.log(`${child.name} stderr (first 1500 chars):\n${child.stderrText().slice(0, 1500)}`)

    mkdirSync(RESULTS_DIR, { recursive: true })
    const file = `${RESULTS_DIR}presence-${new Date().toISOString().replace(/[:.]/g, '-')}.json`
    writeFileSync(file, `${JSON.stringify({
      date: new Date().toISOString(),
      revision,
      revisionAfter: gitRevision(),
      cores: availableParallelism(),
      cpu: cpus()[0]?.model,
      node: process.version,
      settings: { members, channel: CHANNEL, leaveDelayMs: LEAVE_DELAY_MS, queries: QUERIES, probeUsers: PROBE_USERS, logLevel },
      join: { seconds: joinSeconds, subscribed, subscribeErrors, memberJoinFrames, ...(subscribeFailure === undefined ? {} : { firstFailure: subscribeFailure }), observers: joinFigures, redisCpuMicros: redisCpuJoin, redisProcCpuMicros: redisProcCpuJoin, redisCpuPerJoinMicros: redisCpuJoin / members, gatewayCpuMicros: gatewayCpuJoin, gatewayCpuPerJoinMicros: gatewayCpuJoin / members, commandCalls: statsJoin },
      query,
      roundTrips: { join: joinTrips, leave: leaveTrips },
      restart,
      targets: { queryP99: queryOk, roundTrips: tripsOk, restart: restartOk },
      clean,
      seconds: (performance.now() - started) / 1000
    }, null, 2)}\n`)
    log(`results written to ${file}`)
    if (performance.now() - started > BUDGET_MS) log(`WARNING: the run took longer than ${BUDGET_MS / 1000} s`)
    return clean && queryOk && tripsOk && restartOk ? 0 : 1
  } finally {
    process.off('SIGINT', onSigint)
    await stopAll()
  }
}
