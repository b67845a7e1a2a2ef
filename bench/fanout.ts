/**
 * Fan-out benchmark (issue 3): one channel, N WebSocket subscribers, 200 messages
 * published at 20/s; delivery latency, lost and duplicated messages, for the
 * gateway (POST /v1/publish -> Redis -> every subscriber) and for a bare `ws`
 * WebSocketServer broadcasting the same payloads (the baseline). Loopback only.
 *
 *   npx tsx bench/fanout.ts                          # 1000 subscribers (~40 s)
 *   npx tsx bench/fanout.ts --subscribers 200
 *   npm run bench -- --fanout-subscribers 1000       # as the last phase of npm run bench
 *
 * Everything it starts (redis-server on a free port, the gateway child and the bare
 * `ws` child, bench/servers/bare-ws.ts) is stopped by pid.
 * Latency = receive time - `sentAt`, both read in this process
 * (performance.timeOrigin + performance.now(), sub-millisecond), so no clock skew.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { availableParallelism, cpus } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { mintDevToken } from '../src/server/dev/dev-token.js'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild } from './lib/child.js'
import { JWT_SECRET, WS_PATH, gatewayEnv, gitRevision, log } from './lib/setup.js'
import { openSocketIoSubscriber } from './lib/socketio-subscriber.js'

const CHANNEL = 'bench:fanout'
const MESSAGES = 200
const RATE_PER_SECOND = 20
const WARMUP_MESSAGES = 20
const PHASE_BUDGET_MS = 150_000
const CONNECT_CONCURRENCY = 50
const CONNECT_TIMEOUT_MS = 10_000
const DRAIN_TIMEOUT_MS = 10_000
const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url))

const now = (): number => performance.timeOrigin + performance.now()
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, Math.max(0, ms))) }

// ---------------------------------------------------------------------------
// The parent: clients, publisher, measurement.
// ---------------------------------------------------------------------------

interface HttpAnswer { readonly status: number, readonly body: string }

async function postJson (agent: Agent, port: number, path: string, body: unknown, token?: string): Promise<HttpAnswer> {
  const payload = body === undefined ? undefined : JSON.stringify(body)
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string> = {}
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    if (payload !== undefined) headers['content-type'] = 'application/json'
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent, headers, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error(`POST ${path} timed out`)) })
    req.on('error', reject)
    req.end(payload)
  })
}

/** One subscriber: how to close it and, per message n, how many times it arrived. */
interface Subscriber {
  readonly close: () => Promise<void>
  readonly counts: Uint16Array
  closedEarly: boolean
}

interface Target {
  readonly name: string
  readonly child: ServerChild
  /** A ticket for user i (gateway) or nothing (bare: no auth). */
  readonly ticket?: (agent: Agent, i: number) => Promise<string>
  readonly publish: (agent: Agent, data: unknown) => Promise<HttpAnswer>
  /** Socket.IO instead of a plain WebSocket: connect with user i's JWT as auth payload. */
  readonly socketIoToken?: (i: number) => string
}

async function openSubscriber (agent: Agent, target: Target, i: number, latencies: number[]): Promise<Subscriber> {
  if (target.socketIoToken !== undefined) return await openSocketIoSubscriber(target.child.port, target.socketIoToken(i), CHANNEL, MESSAGES, CONNECT_TIMEOUT_MS, latencies)
  const query = target.ticket === undefined ? '' : `?ticket=${await target.ticket(agent, i)}`
  const socket = new WebSocket(`ws://127.0.0.1:${target.child.port}${WS_PATH}${query}`)
  const close = async (): Promise<void> => {
    if (socket.readyState === WebSocket.CLOSED) return
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => { socket.terminate(); resolve() }, 3000)
      socket.once('close', () => { clearTimeout(timer); resolve() })
      socket.close()
    })
  }
  const subscriber: Subscriber = { close, counts: new Uint16Array(MESSAGES), closedEarly: false }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('subscribe timed out')) }, CONNECT_TIMEOUT_MS)
      const fail = (err: Error): void => { clearTimeout(timer); socket.off('message', onSetup); reject(err) }
      const onSetup = (data: WebSocket.RawData): void => {
        const frame = JSON.parse(data.toString()) as { type?: string, code?: string }
        if (frame.type === 'session_established') {
          socket.send(JSON.stringify({ type: 'subscribe', channel: CHANNEL, id: 1 }))
        } else if (frame.type === 'subscribed') {
          clearTimeout(timer)
          socket.off('message', onSetup)
          resolve()
        } else {
          fail(new Error(`unexpected frame ${frame.type ?? '?'} ${frame.code ?? ''}`))
        }
      }
      socket.on('message', onSetup)
      socket.once('error', fail)
      socket.once('close', (code) => { fail(new Error(`closed ${code} before subscribed`)) })
    })
  } catch (err) {
    socket.terminate()
    throw err
  }
  socket.removeAllListeners('close')
  socket.removeAllListeners('error')
  socket.on('error', () => { /* counted through close */ })
  socket.on('close', () => { subscriber.closedEarly = true })
  socket.on('message', (data) => {
    const received = now()
    const frame = JSON.parse(data.toString()) as { type?: string, data?: { n?: number, sentAt?: number } }
    if (frame.type !== 'message') return
    const n = frame.data?.n
    const sentAt = frame.data?.sentAt
    if (typeof n !== 'number' || typeof sentAt !== 'number' || n < 0 || n >= MESSAGES) return // warm-up
    if (subscriber.counts[n]! === 0) latencies.push(received - sentAt)
    subscriber.counts[n]!++
  })
  return subscriber
}

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

export interface FanoutSide {
  readonly name: string
  readonly subscribers: number
  readonly subscribed: number
  readonly firstFailure?: string
  readonly subscribeSeconds: number
  readonly published: number
  readonly publishFailures: number
  readonly expected: number
  readonly delivered: number
  readonly lost: number
  readonly duplicated: number
  readonly closedEarly: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  /** Server CPU (process.cpuUsage of the child) during publishing + delivery, µs per delivered frame. */
  readonly serverCpuPerDeliveryMicros: number
  readonly serverCores: number
}

async function measure (target: Target, subscriberCount: number, deadline: number): Promise<FanoutSide> {
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECT_CONCURRENCY })
  const latencies: number[] = []
  const subscribers: Subscriber[] = []
  let firstFailure: string | undefined
  try {
    // 1. Subscribe, CONNECT_CONCURRENCY at a time, bounded by the phase deadline.
    const subscribeStart = performance.now()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < subscriberCount && performance.now() < deadline - 30_000) {
        const i = next++
        try {
          subscribers.push(await openSubscriber(agent, target, i, latencies))
        } catch (err) {
          firstFailure ??= (err as Error).message
        }
      }
    }
    await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker))
    const subscribeSeconds = (performance.now() - subscribeStart) / 1000
    log(`${target.name}: ${subscribers.length}/${subscriberCount} subscribed in ${subscribeSeconds.toFixed(1)} s${firstFailure === undefined ? '' : ` (first failure: ${firstFailure})`}`)

    // 2. Warm-up publishes (n < 0, ignored by the clients), then the measured ones, on a fixed schedule.
    const publishAt = async (n: number, at: number): Promise<boolean> => {
      await sleep(at - performance.now())
      try {
        const answer = await target.publish(agent, { n, sentAt: now() })
        if (answer.status !== 200) { firstFailure ??= `publish: HTTP ${answer.status} ${answer.body.slice(0, 200)}`; return false }
        return true
      } catch (err) {
        firstFailure ??= `publish: ${(err as Error).message}`
        return false
      }
    }
    const interval = 1000 / RATE_PER_SECOND
    const warmStart = performance.now()
    await Promise.all(Array.from({ length: WARMUP_MESSAGES }, async (_, k) => await publishAt(-1 - k, warmStart + k * interval)))
    await sleep(500)

    const cpuBefore = await target.child.cpu()
    const start = performance.now() + interval
    const outcomes = await Promise.all(Array.from({ length: MESSAGES }, async (_, n) => await publishAt(n, start + n * interval)))
    const published = outcomes.filter(Boolean).length

    // 3. Wait (bounded) until every open subscriber has every published message.
    const expectedPerSubscriber = MESSAGES
    const drainDeadline = Math.min(performance.now() + DRAIN_TIMEOUT_MS, deadline)
    const complete = (): boolean => subscribers.every((s) => s.closedEarly || s.counts.every((count) => count > 0))
    while (!complete() && performance.now() < drainDeadline) await sleep(20)
    const cpuAfter = await target.child.cpu()
    const seconds = (performance.now() - start) / 1000

    let delivered = 0
    let duplicated = 0
    for (const s of subscribers) {
      for (const count of s.counts) {
        if (count > 0) delivered++
        if (count > 1) duplicated += count - 1
      }
    }
    const expected = subscriberCount * expectedPerSubscriber
    const sorted = latencies.sort((a, b) => a - b)
    const serverCpu = (cpuAfter.user + cpuAfter.system) - (cpuBefore.user + cpuBefore.system)
    return {
      name: target.name,
      subscribers: subscriberCount,
      subscribed: subscribers.length,
      ...(firstFailure === undefined ? {} : { firstFailure }),
      subscribeSeconds,
      published,
      publishFailures: MESSAGES - published,
      expected,
      delivered,
      lost: expected - delivered,
      duplicated,
      closedEarly: subscribers.filter((s) => s.closedEarly).length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      serverCpuPerDeliveryMicros: serverCpu / Math.max(1, delivered),
      serverCores: serverCpu / 1e6 / seconds
    }
  } finally {
    // Close every client (handshake bounded to 3 s, then terminate).
    await Promise.all(subscribers.map(async (subscriber) => { await subscriber.close() }))
    agent.destroy()
  }
}

export interface FanoutResult {
  readonly subscribers: number
  readonly bare: FanoutSide
  readonly socketIo: FanoutSide
  readonly gateway: FanoutSide
  readonly ratioP99: number
  readonly seconds: number
  readonly clean: boolean
  readonly report: string
}

const f = (value: number, digits = 1): string => Number.isNaN(value) ? '-' : value.toFixed(digits)

function report (result: Omit<FanoutResult, 'report'>): string {
  const row = (s: FanoutSide): string =>
    `| ${s.name.padEnd(26)} | ${`${s.subscribed}/${s.subscribers}`.padStart(10)} | ${String(s.published).padStart(9)} | ${f(s.p50Ms).padStart(6)} | ${f(s.p99Ms).padStart(6)} | ${f(s.maxMs).padStart(6)} | ${String(s.delivered).padStart(9)} | ${String(s.lost).padStart(4)} | ${String(s.duplicated).padStart(10)} | ${f(s.serverCpuPerDeliveryMicros).padStart(22)} | ${f(s.serverCores, 2).padStart(12)} |`
  return [
    `| ${`fan-out, ${result.subscribers} subscribers`.padEnd(26)} | subscribed | published | p50 ms | p99 ms | max ms | delivered | lost | duplicated | server CPU µs/delivery | server cores |`,
    '|:---------------------------|-----------:|----------:|-------:|-------:|-------:|----------:|-----:|-----------:|-----------------------:|-------------:|',
    row(result.bare),
    row(result.socketIo),
    row(result.gateway),
    ...[result.bare, result.socketIo, result.gateway].flatMap((s) => s.firstFailure === undefined ? [] : [`${s.name}: first failure: ${s.firstFailure}`]),
    `RATIO fan-out p99 gateway/bare: ${f(result.ratioP99, 2)}x (target <= 2.00x: ${result.ratioP99 <= 2 ? 'MET' : 'NOT MET'}); lost ${result.gateway.lost}, duplicated ${result.gateway.duplicated} (target 0/0: ${result.clean ? 'MET' : 'NOT MET'})`,
    `fan-out phase runtime ${result.seconds.toFixed(1)} s (bound ${PHASE_BUDGET_MS / 1000} s)`
  ].join('\n')
}

/** The whole fan-out phase: starts and stops its own redis-server and children. */
export async function runFanout (subscriberCount: number, logLevel = 'info'): Promise<FanoutResult> {
  const started = performance.now()
  const deadline = started + PHASE_BUDGET_MS
  const children: ServerChild[] = []
  let redis: RedisServer | undefined
  try {
    redis = await RedisServer.start()
    const bareChild = await ServerChild.start('bare-ws', 'bare-ws.ts', {})
    children.push(bareChild)
    const gatewayChild = await ServerChild.start('gateway', 'gateway.ts', {
      ...gatewayEnv(redis.url, logLevel),
      WS_MAX_BUFFERED_BYTES: String(4 * 1024 * 1024)
    })
    children.push(gatewayChild)
    const socketIoChild = await ServerChild.start('socket.io', 'socketio.ts', { REDIS_URL: redis.url, JWT_SECRET })
    children.push(socketIoChild)
    log(`fan-out: Socket.IO pid ${socketIoChild.pid} port ${socketIoChild.port}`)
    log(`fan-out: redis-server pid ${redis.pid} port ${redis.port}; bare ws pid ${bareChild.pid} port ${bareChild.port}; gateway pid ${gatewayChild.pid} port ${gatewayChild.port}; ${subscriberCount} subscribers, ${MESSAGES} messages at ${RATE_PER_SECOND}/s`)

    const userTokens: string[] = []
    for (let i = 0; i < subscriberCount; i++) {
      const id = String(i).padStart(5, '0')
      userTokens.push(await mintDevToken({ secret: JWT_SECRET, sub: `fanout-user-${id}`, sessionId: `fanout-session-${id}`, channels: ['bench:*'], expiresIn: '1h' }))
    }
    const serviceToken = await mintDevToken({ secret: JWT_SECRET, sub: 'bench-backend', scope: 'gateway:publish', expiresIn: '1h' })

    const bare = await measure({
      name: 'bare ws WebSocketServer',
      child: bareChild,
      publish: async (agent, data) => await postJson(agent, bareChild.port, '/publish', { channel: CHANNEL, data })
    }, subscriberCount, deadline)
    const socketIo = await measure({
      name: 'Socket.IO + redis-adapter',
      child: socketIoChild,
      socketIoToken: (i) => userTokens[i]!,
      publish: async (agent, data) => await postJson(agent, socketIoChild.port, '/publish', { channel: CHANNEL, data })
    }, subscriberCount, deadline)
    const gateway = await measure({
      name: 'gateway (Redis engine)',
      child: gatewayChild,
      ticket: async (agent, i) => {
        const answer = await postJson(agent, gatewayChild.port, '/ws-ticket', undefined, userTokens[i]!)
        if (answer.status !== 200) throw new Error(`ticket: HTTP ${answer.status} ${answer.body.slice(0, 200)}`)
        return (JSON.parse(answer.body) as { ticket: string }).ticket
      },
      publish: async (agent, data) => await postJson(agent, gatewayChild.port, '/v1/publish', { channel: CHANNEL, data }, serviceToken)
    }, subscriberCount, deadline)

    const partial = {
      subscribers: subscriberCount,
      bare,
      socketIo,
      gateway,
      ratioP99: gateway.p99Ms / bare.p99Ms,
      seconds: (performance.now() - started) / 1000,
      clean: [bare, socketIo, gateway].every((s) => s.lost === 0 && s.duplicated === 0 && s.publishFailures === 0 && s.subscribed === s.subscribers)
    }
    return { ...partial, report: report(partial) }
  } finally {
    await Promise.all(children.map(async (child) => { await child.stop() }))
    await redis?.stop()
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({ options: { subscribers: { type: 'string', default: '1000' }, 'log-level': { type: 'string', default: 'info' } } })
  const subscribers = Number(values.subscribers)
  if (!Number.isInteger(subscribers) || subscribers < 1 || subscribers > 5000) throw new Error('--subscribers must be an integer in [1, 5000]')
  const revision = gitRevision()
  log(`realtime-gateway fan-out bench at ${revision}: ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}`)
  const result = await runFanout(subscribers, values['log-level'] ?? 'info')
  console.log(`\nrealtime-gateway fan-out — ${revision}; ${availableParallelism()} cores, node ${process.version}\n${result.report}`)
  writeFanoutResult(result, revision)
  if (!result.clean) process.exitCode = 1
}

export function writeFanoutResult (result: FanoutResult, revision: string): void {
  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = `${RESULTS_DIR}fanout-${new Date().toISOString().replace(/[:.]/g, '-')}.json`
  const data: Partial<Record<keyof FanoutResult, unknown>> = { ...result }
  delete data.report
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), revision, cores: availableParallelism(), node: process.version, messages: MESSAGES, ratePerSecond: RATE_PER_SECOND, ...data }, null, 2)}\n`)
  log(`fan-out results written to ${file}`)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main()
}
