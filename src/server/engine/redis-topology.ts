/**
 * Which Redis the gateway runs on (SPEC §7: standalone, Sentinel or Cluster), as
 * plain data. Parsing the environment's Redis variables lives here, free of ioredis,
 * so config.ts can validate them at boot and redis-connection.ts can build clients.
 */

export interface RedisNode {
  readonly host: string
  readonly port: number
}

/** One server (or a managed endpoint) named by a URL; auth, db and TLS (`rediss://`) come from the URL. */
export interface StandaloneTopology {
  readonly kind: 'standalone'
  readonly url: string
}

/** A master found through Sentinel; the gateway follows it across failovers. */
export interface SentinelTopology {
  readonly kind: 'sentinel'
  readonly sentinels: readonly RedisNode[]
  /** The master's name in `sentinel monitor <name> ...`. */
  readonly name: string
  /** `requirepass` of the Sentinels themselves, when set. */
  readonly sentinelPassword?: string
  readonly username?: string
  readonly password?: string
  /** TLS to the Sentinels and to the master they name. */
  readonly tls: boolean
}

/** A Redis Cluster, discovered from any of the seed nodes. */
export interface ClusterTopology {
  readonly kind: 'cluster'
  readonly nodes: readonly RedisNode[]
  readonly username?: string
  readonly password?: string
  readonly tls: boolean
}

export type RedisTopology = StandaloneTopology | SentinelTopology | ClusterTopology

/** The environment variables that choose and reach the Redis topology (SPEC §2). */
export interface RedisTopologyEnv {
  readonly REDIS_URL?: string
  readonly REDIS_SENTINELS?: string
  readonly REDIS_SENTINEL_NAME?: string
  readonly REDIS_SENTINEL_PASSWORD?: string
  readonly REDIS_CLUSTER_NODES?: string
  readonly REDIS_USERNAME?: string
  readonly REDIS_PASSWORD?: string
  readonly REDIS_TLS?: boolean
}

/** A topology variable is wrong; the message names it first (config.ts prints it as the boot line). */
export class RedisTopologyError extends Error {
  override name = 'RedisTopologyError'
}

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/

/** `host:port[,host:port...]`, IPv6 in brackets (`[::1]:6379`). Throws naming `variable`. */
export function parseNodeList (variable: string, value: string): RedisNode[] {
  const entries = value.split(',').map((entry) => entry.trim()).filter(Boolean)
  if (entries.length === 0) throw new RedisTopologyError(`${variable} must list at least one host:port`)
  const nodes: RedisNode[] = []
  const seen = new Set<string>()
  for (const entry of entries) {
    const match = HOST_PORT.exec(entry)
    const port = Number(match?.[3])
    const host = match?.[1] ?? match?.[2]
    if (host === undefined || !(port >= 1 && port <= 65535)) {
      throw new RedisTopologyError(`${variable} entry "${entry}" must be host:port (IPv6 as [address]:port)`)
    }
    if (seen.has(`${host}:${port}`)) throw new RedisTopologyError(`${variable} lists ${entry} twice`)
    seen.add(`${host}:${port}`)
    nodes.push({ host, port })
  }
  return nodes
}

/**
 * The topology the environment asks for, or undefined for none (the embedded engine).
 * Exactly one of REDIS_URL, REDIS_SENTINELS and REDIS_CLUSTER_NODES may be set, and
 * every other Redis variable must belong to the chosen one: a variable that would be
 * silently ignored is an error, so a typo or a half-migrated deployment fails at boot.
 */
export function topologyFromEnv (env: RedisTopologyEnv): RedisTopology | undefined {
  const chosen = (['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_CLUSTER_NODES'] as const).filter((name) => env[name] !== undefined)
  if (chosen.length > 1) {
    throw new RedisTopologyError(`${chosen[1]} cannot be combined with ${chosen[0]}: configure exactly one Redis topology (standalone, Sentinel or Cluster)`)
  }
  const sentinelOnly = (['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_PASSWORD'] as const).find((name) => env[name] !== undefined)
  if (sentinelOnly !== undefined && env.REDIS_SENTINELS === undefined) {
    throw new RedisTopologyError(`${sentinelOnly} is set but REDIS_SENTINELS is not: it only applies to a Sentinel topology`)
  }
  const nodeOptions = (['REDIS_USERNAME', 'REDIS_PASSWORD', 'REDIS_TLS'] as const).find((name) => env[name] !== undefined)
  if (nodeOptions !== undefined && env.REDIS_SENTINELS === undefined && env.REDIS_CLUSTER_NODES === undefined) {
    throw new RedisTopologyError(env.REDIS_URL === undefined
      ? `${nodeOptions} is set but no Redis topology is: it applies to REDIS_SENTINELS or REDIS_CLUSTER_NODES`
      : `${nodeOptions} cannot be combined with REDIS_URL: put credentials in the URL (redis://user:password@host) and use rediss:// for TLS`)
  }
  if (env.REDIS_USERNAME !== undefined && env.REDIS_PASSWORD === undefined) {
    throw new RedisTopologyError('REDIS_USERNAME is set without REDIS_PASSWORD')
  }
  const auth = {
    ...(env.REDIS_USERNAME === undefined ? {} : { username: env.REDIS_USERNAME }),
    ...(env.REDIS_PASSWORD === undefined ? {} : { password: env.REDIS_PASSWORD })
  }

  if (env.REDIS_URL !== undefined) return { kind: 'standalone', url: env.REDIS_URL }
  if (env.REDIS_SENTINELS !== undefined) {
    const sentinels = parseNodeList('REDIS_SENTINELS', env.REDIS_SENTINELS)
    if (env.REDIS_SENTINEL_NAME === undefined) {
      throw new RedisTopologyError('REDIS_SENTINEL_NAME is required with REDIS_SENTINELS (the master name Sentinel monitors)')
    }
    return {
      kind: 'sentinel',
      sentinels,
      name: env.REDIS_SENTINEL_NAME,
      ...(env.REDIS_SENTINEL_PASSWORD === undefined ? {} : { sentinelPassword: env.REDIS_SENTINEL_PASSWORD }),
      ...auth,
      tls: env.REDIS_TLS ?? false
    }
  }
  if (env.REDIS_CLUSTER_NODES !== undefined) {
    return { kind: 'cluster', nodes: parseNodeList('REDIS_CLUSTER_NODES', env.REDIS_CLUSTER_NODES), ...auth, tls: env.REDIS_TLS ?? false }
  }
  return undefined
}
