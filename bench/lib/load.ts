import autocannon from 'autocannon'
import type { ServerChild } from './child.js'
import { Meter, type Usage } from './meter.js'

export interface LoadOptions {
  readonly connections: number
  readonly durationSeconds: number
  /** Bearer tokens used in turn, one per request (distinct users). */
  readonly tokens: readonly string[]
  /** Redis pid, to charge Redis CPU per request too. */
  readonly redisPid?: number
}

/** CPU per operation (microseconds), from a phase's Usage. */
export interface PerOperation {
  readonly server: number
  readonly serverUser: number
  readonly serverSystem: number
  readonly serverProc: number
  readonly redis?: number
  readonly loadGenerator: number
}

export interface PhaseResult {
  readonly name: string
  /** Completed requests (autocannon) or attempted connects. */
  readonly operations: number
  readonly failures: number
  readonly seconds: number
  readonly perSecond: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
  readonly usage: Usage
  readonly perOperation: PerOperation
  /** Server CPU over wall time: 1.0 is one core busy. */
  readonly serverCores: number
  /** CPU used by other processes on the machine during the phase, in cores. */
  readonly backgroundCores: number
}

export function perOperation (usage: Usage, operations: number): PerOperation {
  const per = (micros: number): number => operations === 0 ? Number.NaN : micros / operations
  return {
    server: per(usage.server),
    serverUser: per(usage.serverUser),
    serverSystem: per(usage.serverSystem),
    serverProc: per(usage.serverProc),
    ...(usage.redis === undefined ? {} : { redis: per(usage.redis) }),
    loadGenerator: per(usage.loadGenerator)
  }
}

async function cannon (options: autocannon.Options): Promise<autocannon.Result> {
  return await new Promise((resolve, reject) => {
    autocannon(options, (err, result) => { if (err) reject(err); else resolve(result) })
  })
}

/**
 * `POST /ws-ticket` under autocannon (closed loop: `connections` keep-alive
 * connections, one request in flight each), every request with the next token of
 * the pool and no body. Server, Redis and machine CPU are read before and after.
 */
export async function loadPhase (name: string, server: ServerChild, options: LoadOptions): Promise<PhaseResult> {
  let next = 0
  const tokens = options.tokens
  const meter = new Meter(server, options.redisPid)
  const before = await meter.snapshot()
  const result = await cannon({
    url: server.url,
    connections: options.connections,
    pipelining: 1,
    duration: options.durationSeconds,
    timeout: 10,
    requests: [{
      method: 'POST',
      path: '/ws-ticket',
      setupRequest: (request) => {
        const token = tokens[next++ % tokens.length]!
        return { ...request, headers: { ...request.headers, authorization: `Bearer ${token}` } }
      }
    }]
  })
  const usage = Meter.usage(before, await meter.snapshot())

  const operations = result.requests.total
  return {
    name,
    operations,
    failures: result.non2xx + result.errors,
    seconds: result.duration,
    perSecond: operations / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    maxMs: result.latency.max,
    usage,
    perOperation: perOperation(usage, operations),
    serverCores: usage.server / 1e6 / usage.seconds,
    backgroundCores: usage.background / 1e6 / usage.seconds
  }
}
