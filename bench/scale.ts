/**
 * npm run bench -- scale — the issue-14 scale figures, on one instance of each server:
 *
 *   npm run bench -- scale                                   # ~3 min
 *   npm run bench -- scale --hold 15000 --subscribers 10000 --holders 3 --heartbeat-ms 1000
 *
 * 1. Idle: `--hold` connections (default 15,000) held by `--holders` load-generator
 *    processes (bench/scale/holder.ts) against the gateway (Redis engine) and against
 *    bare `ws` (bench/servers/bare-ws.ts with the same heartbeat: one ping sweep of
 *    every socket per interval, ws's documented pattern). Reported: server RSS and V8
 *    heap per connection (after a full GC), and the server CPU of heartbeats with the
 *    connections idle, per 1,000 connections per second, with a short
 *    HEARTBEAT_INTERVAL_MS (`--heartbeat-ms`, default 1000) so it is measurable.
 * 2. Fan-out, on fresh servers with the default heartbeat: `--subscribers` (default
 *    10,000) subscribers of one channel, 30 messages at `--rate` (default 2) per second, gateway (POST /v1/publish) vs bare `ws` (POST /publish, one serialized
 *    frame sent to every subscriber): delivery p50/p99 and server CPU per delivery.
 * Servers run with `ulimit -n` raised to the hard limit (sh -c 'ulimit -n …; exec node …').
 * Everything it starts (redis-server, servers, holders) is stopped by pid, also on failure.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { availableParallelism, cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { mintDevToken } from '../src/server/dev/dev-token.js'
import { RedisServer } from '../test/helpers/redis-server.js'
import { ServerChild } from './lib/child.js'
import { JWT_SECRET, WS_PATH, gatewayEnv, gitRevision, log, table } from './lib/setup.js'
import type { HolderCommand, HolderReply } from './scale/protocol.js'

const CHANNEL = 'bench:scale'
const MESSAGES = 30

function bounded (name: string, value: string | undefined, min: number, max: number): number {
  const parsed = Number(value)
  if (!Number.isInteger(parsed) || parsed < min || parsed > max) throw new Error(`--${name} must be an integer in [${min}, ${max}]`)
  return parsed
}

class Holder {
  readonly #child: ChildProcess
  private constructor (child: ChildProcess) { this.#child = child }

  static async start (): Promise<Holder> {
    const child = fork(fileURLToPath(new URL('./scale/holder.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    const holder = new Holder(child)
    await holder.#next('ready', 30_000)
    return holder
  }

  get pid (): number | undefined { return this.#child.pid }

  async #next<T extends HolderReply['type']> (type: T, timeoutMs: number): Promise<Extract<HolderReply, { type: T }>> {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { this.#child.off('message', onMessage); reject(new Error(`holder ${this.pid}: no ${type} within ${timeoutMs / 1000} s`)) }, timeoutMs)
      const onMessage = (message: HolderReply): void => {
        if (message.type === 'failed') { clearTimeout(timer); this.#child.off('message', onMessage); reject(new Error(message.message)); return }
        if (message.type !== type) return
        clearTimeout(timer)
        this.#child.off('message', onMessage)
        resolve(message as Extract<HolderReply, { type: T }>)
      }
      this.#child.on('message', onMessage)
    })
  }

  async ask<T extends HolderReply['type']> (command: HolderCommand, answer: T, timeoutMs: number): Promise<Extract<HolderReply, { type: T }>> {
    const next = this.#next(answer, timeoutMs)
    this.#child.send(command)
    return await next
  }

  async stop (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => { this.#child.once('exit', () => { resolve() }) })
    this.#child.kill('SIGTERM')
    const timer = setTimeout(() => { this.#child.kill('SIGKILL') }, 5000)
    await exited
    clearTimeout(timer)
  }
}

function percentile (sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** The HTTP status, or 0 when the request failed or timed out (counted as not published). */
async function postJson (agent: Agent, port: number, path: string, body: unknown, token?: string): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (token !== undefined) headers.authorization = `Bearer ${token}`
    const req = request({ host: '127.0.0.1', port, method: 'POST', path, agent, headers, timeout: 30_000 }, (res) => {
      res.resume()
      res.on('end', () => { resolve(res.statusCode ?? 0) })
    })
    req.on('timeout', () => { req.destroy(new Error(`POST ${path} timed out`)) })
    req.on('error', reject)
    req.end(JSON.stringify(body))
  }).catch((err: unknown) => {
    log(`POST ${path}: ${(err as Error).message}`)
    return 0
  })
}

export async function runScale (argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      hold: { type: 'string', default: '15000' },
      subscribers: { type: 'string', default: '10000' },
      holders: { type: 'string', default: '3' },
      'heartbeat-ms': { type: 'string', default: '1000' },
      'idle-seconds': { type: 'string', default: '10' },
      // 10,000 deliveries per message: at 2/s the three load generators keep up on two cores.
      rate: { type: 'string', default: '2' }
    }
  })
  const HOLD = bounded('hold', values.hold, 100, 18_000)
  const SUBSCRIBERS = bounded('subscribers', values.subscribers, 100, 18_000)
  const HOLDERS = bounded('holders', values.holders, 1, 8)
  const HEARTBEAT_MS = bounded('heartbeat-ms', values['heartbeat-ms'], 100, 60_000)
  const IDLE_S = bounded('idle-seconds', values['idle-seconds'], 2, 60)
  const RATE_PER_SECOND = bounded('rate', values.rate, 1, 50)
  const started = performance.now()
  const revision = gitRevision()
  const servers: ServerChild[] = []
  const holders: Holder[] = []
  let redis: RedisServer | undefined
  let clean = true
  const out: string[] = []
  try {
    log(`scale at ${revision}: ${availableParallelism()} cores, node ${process.version}; ${HOLD} idle, ${SUBSCRIBERS} subscribers, ${HOLDERS} holder processes, heartbeat ${HEARTBEAT_MS} ms`)
    redis = await RedisServer.start()
    const tokens: string[] = []
    for (let i = 0; i < 1000; i++) {
      const id = String(i).padStart(5, '0')
      tokens.push(await mintDevToken({ secret: JWT_SECRET, sub: `scale-user-${id}`, sessionId: `scale-session-${id}`, channels: ['bench:*'], expiresIn: '1h' }))
    }
    const serviceToken = await mintDevToken({ secret: JWT_SECRET, sub: 'bench-backend', scope: 'gateway:publish', expiresIn: '1h' })
    for (let i = 0; i < HOLDERS; i++) holders.push(await Holder.start())

    const peers = [
      { name: 'bare ws', script: 'bare-ws.ts', env: { WS_PATH, BENCH_HEARTBEAT_MS: String(HEARTBEAT_MS) } as Record<string, string>, tokens: [] as string[], publishPath: '/publish', publishToken: undefined as string | undefined },
      { name: 'gateway', script: 'gateway.ts', env: { ...gatewayEnv(redis.url, 'info'), HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), WS_MAX_BUFFERED_BYTES: String(4 * 1024 * 1024) }, tokens, publishPath: '/v1/publish', publishToken: serviceToken }
    ]
    const idleRows: string[][] = []
    const fanoutRows: string[][] = []
    for (const peer of peers) {
      let server = await ServerChild.start(peer.name, peer.script, peer.env, ['--expose-gc'], { raiseFileLimit: true })
      servers.push(server)
      const openAll = async (total: number, channel?: string): Promise<number> => {
        const per = Math.ceil(total / holders.length)
        const answers = await Promise.all(holders.map(async (holder, i) => await holder.ask({ type: 'open', port: server.port, wsPath: WS_PATH, count: Math.max(0, Math.min(per, total - i * per)), offset: i * per, concurrency: 20, tokens: peer.tokens, ...(channel === undefined ? {} : { channel }), deadlineMs: 120_000 }, 'opened', 150_000)))
        for (const answer of answers) if (answer.failed > 0) { clean = false; log(`${peer.name}: ${answer.failed} failed, first: ${answer.firstFailure ?? '?'}`) }
        return answers.reduce((sum, answer) => sum + answer.open, 0)
      }
      const closeAll = async (): Promise<void> => { await Promise.all(holders.map(async (holder) => await holder.ask({ type: 'close' }, 'closed', 120_000))) }

      // 1. Idle connections: memory and heartbeat CPU.
      await openAll(300)
      await closeAll()
      const before = await server.memory()
      const opening = performance.now()
      const held = await openAll(HOLD)
      log(`${peer.name}: ${held}/${HOLD} open in ${((performance.now() - opening) / 1000).toFixed(1)} s`)
      await new Promise((resolve) => setTimeout(resolve, 2 * HEARTBEAT_MS))
      const after = await server.memory()
      const cpuBefore = await server.cpu()
      const idleStart = performance.now()
      await new Promise((resolve) => setTimeout(resolve, IDLE_S * 1000))
      const cpuAfter = await server.cpu()
      const idleSeconds = (performance.now() - idleStart) / 1000
      const idleCpu = (cpuAfter.user + cpuAfter.system) - (cpuBefore.user + cpuBefore.system)
      const stillOpen = (await Promise.all(holders.map(async (holder) => await holder.ask({ type: 'stats' }, 'stats', 30_000)))).reduce((sum, stats) => sum + stats.open, 0)
      if (stillOpen !== held) { clean = false; log(`${peer.name}: ${held - stillOpen} connections dropped while idle`) }
      idleRows.push([
        peer.name, `${held}/${HOLD}`, String(stillOpen),
        ((after.rss - before.rss) / held / 1024).toFixed(1), ((after.heapUsed - before.heapUsed) / held / 1024).toFixed(1),
        (after.rss / 2 ** 20).toFixed(0),
        (idleCpu / idleSeconds / (held / 1000)).toFixed(0), (idleCpu / idleSeconds / 1e6).toFixed(3)
      ])
      log(`idle: ${idleRows[idleRows.length - 1]!.join(' | ')}`)
      await closeAll()

      // 2. Fan-out to SUBSCRIBERS of one channel, on a fresh server with the default
      // heartbeat (25 s): the short one above would add its pings to the CPU per delivery.
      await server.stop()
      const fanoutEnv = { ...peer.env }
      delete fanoutEnv.HEARTBEAT_INTERVAL_MS
      delete fanoutEnv.BENCH_HEARTBEAT_MS
      server = await ServerChild.start(`${peer.name} (fan-out)`, peer.script, fanoutEnv, ['--expose-gc'], { raiseFileLimit: true })
      servers.push(server)
      const subscribed = await openAll(SUBSCRIBERS, CHANNEL)
      const agent = new Agent({ keepAlive: true, maxSockets: 20 })
      for (let k = 0; k < 5; k++) await postJson(agent, server.port, peer.publishPath, { channel: CHANNEL, data: { n: -1 - k, sentAt: 0 } }, peer.publishToken)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const fanCpuBefore = await server.cpu()
      const interval = 1000 / RATE_PER_SECOND
      const publishStart = performance.now() + interval
      const statuses = await Promise.all(Array.from({ length: MESSAGES }, async (_, n) => {
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, publishStart + n * interval - performance.now())))
        return await postJson(agent, server.port, peer.publishPath, { channel: CHANNEL, data: { n, sentAt: performance.timeOrigin + performance.now() } }, peer.publishToken)
      }))
      const expected = subscribed * MESSAGES
      const drainDeadline = performance.now() + 30_000
      let stats: Array<Extract<HolderReply, { type: 'stats' }>> = []
      do {
        await new Promise((resolve) => setTimeout(resolve, 250))
        stats = await Promise.all(holders.map(async (holder) => await holder.ask({ type: 'stats' }, 'stats', 30_000)))
      } while (stats.reduce((sum, s) => sum + s.received, 0) < expected && performance.now() < drainDeadline)
      const fanCpuAfter = await server.cpu()
      agent.destroy()
      const delivered = stats.reduce((sum, s) => sum + s.received, 0)
      const all = new Float64Array(delivered)
      let at = 0
      for (const s of stats) {
        const chunk = new Float64Array(Buffer.from(s.latencies, 'base64').buffer.slice(0))
        all.set(chunk.subarray(0, Math.min(chunk.length, delivered - at)), at)
        at += chunk.length
      }
      all.sort()
      const published = statuses.filter((status) => status === 200).length
      if (published !== MESSAGES || delivered !== expected) { clean = false; log(`${peer.name}: published ${published}/${MESSAGES}, delivered ${delivered}/${expected}`) }
      const fanCpu = (fanCpuAfter.user + fanCpuAfter.system) - (fanCpuBefore.user + fanCpuBefore.system)
      fanoutRows.push([peer.name, `${subscribed}/${SUBSCRIBERS}`, `${published}/${MESSAGES}`, `${delivered}/${expected}`, percentile(all, 50).toFixed(1), percentile(all, 99).toFixed(1), (all[all.length - 1] ?? Number.NaN).toFixed(1), (fanCpu / Math.max(1, delivered)).toFixed(2)])
      await closeAll()
      await server.stop()
    }

    out.push(
      `realtime-gateway scale — ${revision}; ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), node ${process.version}; ${HOLDERS} load-generator processes; heartbeat every ${HEARTBEAT_MS} ms on both servers`,
      '',
      table(['idle connections', 'opened', 'open after idle', 'RSS KiB/conn', 'V8 heap KiB/conn', 'RSS MiB', `idle CPU (heartbeats) µs per s per 1,000 conns (${IDLE_S} s)`, 'server cores'], idleRows),
      '',
      table([`fan-out, ${MESSAGES} messages at ${RATE_PER_SECOND}/s`, 'subscribed', 'published', 'delivered', 'p50 ms', 'p99 ms', 'max ms', 'server CPU µs/delivery'], fanoutRows),
      '',
      `runtime ${((performance.now() - started) / 1000).toFixed(0)} s${clean ? '' : '; NOT CLEAN (see the log above)'}`
    )
    console.log(out.join('\n'))
    return clean ? 0 : 1
  } finally {
    await Promise.all(holders.map(async (holder) => { await holder.stop() }))
    await Promise.all(servers.map(async (server) => { await server.stop() }))
    await redis?.stop()
  }
}
