import { Agent, request } from 'node:http'
import WebSocket from 'ws'
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
}

export interface ConnectResult extends PhaseResult {
  readonly succeeded: number
  readonly firstFailure?: string
}

async function postTicket (agent: Agent, port: number, token: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/ws-ticket', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        if (res.statusCode !== 200) { reject(new Error(`ticket: HTTP ${res.statusCode} ${body.slice(0, 200)}`)); return }
        resolve((JSON.parse(body) as { ticket: string }).ticket)
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

/**
 * One full connect: ticket request, WebSocket upgrade, `session_established`
 * received. Returns its latency in ms; the socket is then closed (client-initiated
 * close handshake) and awaited, so the server's close work is inside the phase too.
 */
async function connectOnce (agent: Agent, server: ServerChild, token: string, options: ConnectOptions): Promise<number> {
  const started = performance.now()
  const ticket = await postTicket(agent, server.port, token)
  const socket = new WebSocket(`ws://127.0.0.1:${server.port}${options.wsPath}?ticket=${ticket}`)
  try {
    const latency = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('connect timed out')) }, options.connectTimeoutMs)
      socket.once('message', (data) => {
        clearTimeout(timer)
        const frame = JSON.parse(data.toString()) as { type?: string, code?: string }
        if (frame.type === 'session_established') resolve(performance.now() - started)
        else reject(new Error(`first frame ${frame.type ?? '?'} ${frame.code ?? ''}`))
      })
      socket.once('error', (err) => { clearTimeout(timer); reject(err) })
      socket.once('close', (code) => { clearTimeout(timer); reject(new Error(`closed ${code} before session_established`)) })
    })
    return latency
  } finally {
    if (socket.readyState !== WebSocket.CLOSED) {
      const closed = new Promise<void>((resolve) => {
        const timer = setTimeout(() => { socket.terminate(); resolve() }, 2000)
        socket.once('close', () => { clearTimeout(timer); resolve() })
      })
      socket.close()
      await closed
    }
  }
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
