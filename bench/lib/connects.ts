import { Agent, request } from 'node:http'
import WebSocket from 'ws'
import { io as ioClient } from 'socket.io-client'
import type { ServerChild } from './child.js'
import { perOperation, type PhaseResult } from './load.js'
import { Meter } from './meter.js'

export interface ConnectOptions {
  readonly total: number
  readonly concurrency: number
  readonly tokens: readonly string[]
  readonly wsPath: string
  /** Whole-phase bound: connects not started by then are skipped (reported). */
  readonly deadlineMs: number
  /** Bound on one connect (ticket + upgrade + first frame). */
  readonly connectTimeoutMs: number
  readonly redisPid?: number
  /** How to open one connection to this peer (gatewayConnector by default). */
  readonly connector: Connector
}

export interface ConnectResult extends PhaseResult {
  readonly succeeded: number
  readonly firstFailure?: string
}

/** `POST /ws-ticket` with a bearer token: the ticket, or a rejection naming the status (and after `timeoutMs`, if given). */
export async function postTicket (agent: Agent, port: number, token: string, timeoutMs?: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/ws-ticket', agent, headers: { authorization: `Bearer ${token}` }, ...(timeoutMs === undefined ? {} : { timeout: timeoutMs }) }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        if (res.statusCode !== 200) { reject(new Error(`ticket: HTTP ${res.statusCode} ${body.slice(0, 200)}`)); return }
        resolve((JSON.parse(body) as { ticket: string }).ticket)
      })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error('ticket timed out')) })
    req.on('error', reject)
    req.end()
  })
}

/** An open connection a connector made; `close` is a client-initiated close, awaited. */
export interface HeldConnection {
  close (): Promise<void>
}

/**
 * Opens one connection to a peer until its first server frame: the gateway (ticket +
 * upgrade + `session_established`), bare `ws` (upgrade + first frame) or Socket.IO
 * (WebSocket-only connect with the JWT as auth payload + `session_established`).
 */
export type Connector = (agent: Agent, server: ServerChild, token: string, options: Pick<ConnectOptions, 'wsPath' | 'connectTimeoutMs'>) => Promise<HeldConnection>

/** The close handshake, bounded to 2 s (then terminate). */
async function closeWs (socket: WebSocket): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return
  const closed = new Promise<void>((resolve) => {
    const timer = setTimeout(() => { socket.terminate(); resolve() }, 2000)
    socket.once('close', () => { clearTimeout(timer); resolve() })
  })
  socket.close()
  await closed
}

async function openWs (url: string, connectTimeoutMs: number): Promise<HeldConnection> {
  const socket = new WebSocket(url)
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('connect timed out')) }, connectTimeoutMs)
      socket.once('message', (data) => {
        clearTimeout(timer)
        const frame = JSON.parse(data.toString()) as { type?: string, code?: string }
        if (frame.type === 'session_established') resolve()
        else reject(new Error(`first frame ${frame.type ?? '?'} ${frame.code ?? ''}`))
      })
      socket.once('error', (err) => { clearTimeout(timer); reject(err) })
      socket.once('close', (code) => { clearTimeout(timer); reject(new Error(`closed ${code} before session_established`)) })
    })
  } catch (err) {
    await closeWs(socket)
    throw err
  }
  socket.removeAllListeners('close')
  socket.removeAllListeners('error')
  socket.on('error', () => { /* a held socket's error ends in close */ })
  return { close: async () => { await closeWs(socket) } }
}

export const gatewayConnector: Connector = async (agent, server, token, options) => {
  const ticket = await postTicket(agent, server.port, token)
  return await openWs(`ws://127.0.0.1:${server.port}${options.wsPath}?ticket=${ticket}`, options.connectTimeoutMs)
}

export const bareWsConnector: Connector = async (_agent, server, _token, options) =>
  await openWs(`ws://127.0.0.1:${server.port}${options.wsPath}`, options.connectTimeoutMs)

export const socketIoConnector: Connector = async (_agent, server, token, options) => {
  const socket = ioClient(`http://127.0.0.1:${server.port}`, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true, timeout: options.connectTimeoutMs })
  const close = async (): Promise<void> => {
    const engine = socket.io.engine
    if (engine === undefined || engine.readyState === 'closed') { socket.disconnect(); return }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000)
      engine.once('close', () => { clearTimeout(timer); resolve() })
      socket.disconnect()
    })
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('connect timed out')) }, options.connectTimeoutMs)
      socket.once('session_established', () => { clearTimeout(timer); resolve() })
      socket.once('connect_error', (err) => { clearTimeout(timer); reject(err) })
    })
  } catch (err) {
    await close()
    throw err
  }
  return { close }
}

/**
 * One full connect: the peer's connector, then a client-initiated close, awaited, so
 * the server's close work is inside the phase too. Returns the latency to the first
 * server frame in ms.
 */
async function connectOnce (agent: Agent, server: ServerChild, token: string, options: ConnectOptions): Promise<number> {
  const started = performance.now()
  const held = await options.connector(agent, server, token, options)
  const latency = performance.now() - started
  await held.close()
  return latency
}

function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** `total` full connects, `concurrency` at a time, each with the next user's token. */
export async function connectPhase (name: string, server: ServerChild, options: ConnectOptions): Promise<ConnectResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  const latencies: number[] = []
  let started = 0
  let failed = 0
  let firstFailure: string | undefined
  const deadline = performance.now() + options.deadlineMs

  const meter = new Meter(server, options.redisPid)
  const before = await meter.snapshot()
  const worker = async (): Promise<void> => {
    while (started < options.total && performance.now() < deadline) {
      const token = options.tokens[started % options.tokens.length]!
      started++
      try {
        latencies.push(await connectOnce(agent, server, token, options))
      } catch (err) {
        failed++
        firstFailure ??= (err as Error).message
      }
    }
  }
  await Promise.all(Array.from({ length: options.concurrency }, worker))
  const usage = Meter.usage(before, await meter.snapshot())
  agent.destroy()

  const sorted = latencies.sort((a, b) => a - b)
  return {
    name,
    operations: started,
    succeeded: latencies.length,
    failures: failed,
    ...(firstFailure === undefined ? {} : { firstFailure }),
    seconds: usage.seconds,
    perSecond: latencies.length / usage.seconds,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
    usage,
    perOperation: perOperation(usage, started),
    serverCores: usage.server / 1e6 / usage.seconds,
    backgroundCores: usage.background / 1e6 / usage.seconds
  }
}
