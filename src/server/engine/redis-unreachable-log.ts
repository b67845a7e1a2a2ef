import type { EngineLogger } from './engine.js'
import type { RedisNode, RedisTopology } from './redis-topology.js'

/** Default bound on repeated `engine.redis.unreachable` lines: one per 30 s at most. */
export const UNREACHABLE_LOG_INTERVAL_MS = 30_000

/** Where the engine connects, as logs may show it: hosts and ports only, never credentials. */
export interface RedisTarget {
  /** `host:port`, or a comma list of them (the Sentinels, the Cluster's seed nodes). */
  readonly target: string
  /** Sentinel: the master name the Sentinels are asked for. */
  readonly master?: string
}

function hostPort (node: RedisNode): string {
  return node.host.includes(':') ? `[${node.host}]:${node.port}` : `${node.host}:${node.port}`
}

export function redisTarget (topology: RedisTopology): RedisTarget {
  switch (topology.kind) {
    case 'standalone': {
      // Rebuilt from hostname and port only: the URL's userinfo (user:password) never reaches a log.
      // ioredis defaults an absent host to localhost and an absent port to 6379.
      let url: URL
      try {
        url = new URL(topology.url)
      } catch {
        return { target: 'unparseable REDIS_URL' }
      }
      return { target: `${url.hostname === '' ? 'localhost' : url.hostname}:${url.port === '' ? '6379' : url.port}` }
    }
    case 'sentinel':
      return { target: topology.sentinels.map(hostPort).join(','), master: topology.name }
    case 'cluster':
      return { target: topology.nodes.map(hostPort).join(',') }
  }
}

/** The URL's percent-encoded userinfo as ioredis sends it; as is when it is not valid encoding. */
function decoded (part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    return part
  }
}

/** Everything secret in a topology, so an error message that echoes one is scrubbed. */
function secretsOf (topology: RedisTopology): string[] {
  const secrets: string[] = []
  if (topology.kind === 'standalone') {
    try {
      const url = new URL(topology.url)
      for (const part of [url.username, url.password]) secrets.push(part, decoded(part))
    } catch {
      // Unparseable: redisTarget says so; there is nothing to pick out.
    }
  } else {
    secrets.push(topology.username ?? '', topology.password ?? '')
    if (topology.kind === 'sentinel') secrets.push(topology.sentinelPassword ?? '')
  }
  // Longest first, so a secret containing another is removed whole.
  return [...new Set(secrets.filter((secret) => secret !== ''))].sort((a, b) => b.length - a.length)
}

interface ConnectionFailure extends Error {
  readonly code?: unknown
  /** ioredis ClusterAllFailedError: the error of the last seed node tried. */
  readonly lastNodeError?: unknown
}

/**
 * The failure's code: the socket's errno code (ECONNREFUSED, ENOTFOUND, ETIMEDOUT),
 * the last seed node's on a Cluster, the one ioredis's Sentinel error only names in
 * its message, or a Redis reply's first word (WRONGPASS, NOAUTH).
 */
function codeOf (err: ConnectionFailure): string | undefined {
  if (typeof err.code === 'string') return err.code
  if (err.lastNodeError instanceof Error) return codeOf(err.lastNodeError)
  return /\b(E[A-Z]{3,})\b/.exec(err.message)?.[1] ?? (err.name === 'ReplyError' ? /^[A-Z]+\b/.exec(err.message)?.[0] : undefined)
}

export interface RedisUnreachableLogOptions {
  readonly logger: EngineLogger
  readonly topology: RedisTopology
  /** At most one line per interval while the outage lasts. */
  readonly intervalMs?: number
}

/**
 * Says why Redis cannot be reached while the engine is not ready (at boot, or
 * after a drop). ioredis reports every failed (re)connect attempt, every 2 s or so
 * and forever; the first failure of an outage is logged at once and later ones at
 * most once per interval, with how many failed since the line before. The engine
 * logs `engine.redis.ready` when it recovers, and calls `recovered()`.
 */
export class RedisUnreachableLog {
  readonly #logger: EngineLogger
  readonly #topology: RedisTopology['kind']
  readonly #target: RedisTarget
  readonly #secrets: readonly string[]
  readonly #intervalMs: number
  /** Failures since the outage began. */
  #attempts = 0
  /** Failures since the last line. */
  #unlogged = 0
  #lastLineAt = Number.NEGATIVE_INFINITY

  constructor (options: RedisUnreachableLogOptions) {
    this.#logger = options.logger
    this.#topology = options.topology.kind
    this.#target = redisTarget(options.topology)
    this.#secrets = secretsOf(options.topology)
    this.#intervalMs = options.intervalMs ?? UNREACHABLE_LOG_INTERVAL_MS
  }

  failed (err: Error): void {
    this.#attempts += 1
    this.#unlogged += 1
    const now = performance.now()
    if (now - this.#lastLineAt < this.#intervalMs) return
    this.#lastLineAt = now
    this.#logger.error({
      event: 'engine.redis.unreachable',
      topology: this.#topology,
      ...this.#target,
      code: codeOf(err),
      reason: this.#scrub(err.message),
      attempts: this.#attempts,
      failuresSinceLastLog: this.#unlogged
    }, 'redis unreachable; retrying')
    this.#unlogged = 0
  }

  recovered (): void {
    this.#attempts = 0
    this.#unlogged = 0
    this.#lastLineAt = Number.NEGATIVE_INFINITY
  }

  #scrub (message: string): string {
    let scrubbed = message
    for (const secret of this.#secrets) scrubbed = scrubbed.replaceAll(secret, '[redacted]')
    return scrubbed
  }
}
