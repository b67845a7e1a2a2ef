import autocannon from 'autocannon'
import type { ServerChild } from './child.js'

export interface LoadOptions {
  readonly connections: number
  readonly durationSeconds: number
  /** Bearer tokens used in turn, one per request. */
  readonly tokens: readonly string[]
}

export interface PhaseResult {
  readonly name: string
  readonly requests: number
  readonly non2xx: number
  readonly errors: number
  readonly seconds: number
  readonly reqPerSec: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Server CPU time per request, from the child's process.cpuUsage(). */
  readonly cpuMicrosPerRequest: number
  /** The same from /proc/<pid>/stat (10 ms resolution): a cross-check. */
  readonly procMicrosPerRequest: number
  /** Server CPU time over wall time (1.0 = one core busy). */
  readonly serverCores: number
  /** Redis CPU per request, when a Redis pid is given. */
  readonly redisMicrosPerRequest?: number
}

/** autocannon's run as a promise. */
async function cannon (options: autocannon.Options): Promise<autocannon.Result> {
  return await new Promise((resolve, reject) => {
    autocannon(options, (err, result) => { if (err) reject(err); else resolve(result) })
  })
}

/**
 * `POST /ws-ticket` under autocannon: every request carries the next token of the
 * pool (distinct users), no body. Server CPU is read before and after the run.
 */
export async function loadPhase (name: string, server: ServerChild, options: LoadOptions, redisCpu?: () => number): Promise<PhaseResult> {
  let next = 0
  const tokens = options.tokens
  const run = async (): Promise<autocannon.Result> => await cannon({
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

  const before = await server.cpu()
  const redisBefore = redisCpu?.()
  const result = await run()
  const after = await server.cpu()
  const redisAfter = redisCpu?.()

  const requests = result.requests.total
  const seconds = (after.at - before.at) / 1000
  const perRequest = (micros: number): number => requests === 0 ? Number.NaN : micros / requests
  return {
    name,
    requests,
    non2xx: result.non2xx,
    errors: result.errors,
    seconds: result.duration,
    reqPerSec: requests / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    cpuMicrosPerRequest: perRequest(after.cpuMicros - before.cpuMicros),
    procMicrosPerRequest: perRequest(after.procMicros - before.procMicros),
    serverCores: (after.cpuMicros - before.cpuMicros) / 1e6 / seconds,
    ...(redisBefore === undefined || redisAfter === undefined ? {} : { redisMicrosPerRequest: perRequest(redisAfter - redisBefore) })
  }
}
