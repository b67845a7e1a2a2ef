/**
 * Builds the ioredis clients for a topology (standalone, Sentinel, Cluster) with the
 * engine's fail-fast settings (docs/architecture.md "Failing fast", docs/redis.md):
 * a command never waits for a Redis that is not there, and the clients reconnect
 * forever, with jitter, by themselves.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { RedisTopology } from './redis-topology.js'

export type RedisClient = Redis | Cluster

export interface RedisConnections {
  /** Commands and scripts. */
  readonly client: RedisClient
  /**
   * Pub/sub. A subscribed Redis connection runs no other command, so standalone and
   * Sentinel get a second client; a Cluster already keeps dedicated subscriber
   * connections inside (one for PUBLISH channels, one per shard for SSUBSCRIBE), so
   * there it is the same object as `client`.
   */
  readonly subscriber: RedisClient
  /** True on Cluster: channel fan-out can use sharded pub/sub (SSUBSCRIBE/SPUBLISH). */
  readonly cluster: boolean
}

export interface ConnectionSettings {
  /** Upper bound on any one command, so a stalled Redis becomes a 503, not a hang. */
  readonly commandTimeoutMs: number
}

/** Reconnect delay: grows to 2 s with jitter so a fleet does not reconnect in lockstep. */
export function reconnectDelay (attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt, 5), 2000) + Math.floor(Math.random() * 100)
}

const CONNECTION_NAME = 'realtime-gateway'
const SUBSCRIBER = { connectionName: `${CONNECTION_NAME}-sub`, enableAutoPipelining: false } as const

/** Options of every connection that talks to a data node. */
function nodeOptions (settings: ConnectionSettings): RedisOptions {
  return {
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: Math.max(settings.commandTimeoutMs, 2000),
    // An in-flight command fails when the connection drops instead of being replayed.
    maxRetriesPerRequest: 0,
    connectionName: CONNECTION_NAME,
    // A connection still open to a master that was demoted by a failover answers
    // writes with READONLY: drop it so the reconnect finds the new master.
    reconnectOnError: (err) => err.message.startsWith('READONLY')
  }
}

/** Standalone and Sentinel clients: no offline queue, reconnect forever. */
function failFast (settings: ConnectionSettings): RedisOptions {
  return {
    ...nodeOptions(settings),
    // A command while disconnected fails at once instead of queueing (redis/ioredis#285).
    enableOfflineQueue: false,
    retryStrategy: reconnectDelay,
    // Many concurrent requests share a few socket writes: less CPU per ticket.
    enableAutoPipelining: true
  }
}

function auth (topology: { readonly username?: string, readonly password?: string }): RedisOptions {
  return {
    ...(topology.username === undefined ? {} : { username: topology.username }),
    ...(topology.password === undefined ? {} : { password: topology.password })
  }
}

export function createRedisConnections (topology: RedisTopology, settings: ConnectionSettings): RedisConnections {
  switch (topology.kind) {
    case 'standalone': {
      // Auth, db and TLS (rediss://) come from the URL.
      const client = new Redis(topology.url, failFast(settings))
      return { client, subscriber: client.duplicate(SUBSCRIBER), cluster: false }
    }
    case 'sentinel': {
      const client = new Redis({
        ...failFast(settings),
        ...auth(topology),
        sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
        name: topology.name,
        role: 'master',
        ...(topology.sentinelPassword === undefined ? {} : { sentinelPassword: topology.sentinelPassword }),
        sentinelCommandTimeout: settings.commandTimeoutMs,
        // All Sentinels unreachable: keep trying, as for the master itself.
        sentinelRetryStrategy: reconnectDelay,
        // Subscribes to +switch-master on the Sentinels and reconnects as soon as one
        // announces a failover. Without it, after a failover that leaves the old master
        // running (SENTINEL FAILOVER, a partition), the clients keep writing to the old
        // master until Sentinel converts it to a replica about 10 s later and closes
        // its clients, and those writes are lost (test/topologies/sentinel.test.ts).
        failoverDetector: true,
        ...(topology.tls ? { tls: {}, sentinelTLS: {}, enableTLSForSentinelMode: true } : {})
      })
      return { client, subscriber: client.duplicate(SUBSCRIBER), cluster: false }
    }
    case 'cluster': {
      const options: ClusterOptions = {
        // The Cluster's own queue: commands while no slot map is known fail at once.
        // (Each node connection keeps a queue while it first connects, which ioredis
        // requires; commandTimeout bounds it.)
        enableOfflineQueue: false,
        clusterRetryStrategy: reconnectDelay,
        enableAutoPipelining: true,
        // An auto-pipeline pins all its commands to the connection of its first one: a
        // (S)SUBSCRIBE batched with a script would send the script down a subscriber
        // connection ("Connection in subscriber mode"). Seen as soon as every connect and
        // close ran a registry script (SPEC §11) beside channel subscribes.
        autoPipeliningIgnoredCommands: ['subscribe', 'unsubscribe', 'ssubscribe', 'sunsubscribe', 'psubscribe', 'punsubscribe'],
        // Channel fan-out uses SSUBSCRIBE: one subscriber connection per master that
        // owns a listened channel, each message crossing only its own shard.
        shardedSubscribers: true,
        redisOptions: { ...nodeOptions(settings), ...auth(topology), ...(topology.tls ? { tls: {} } : {}) }
      }
      const cluster = new Cluster(topology.nodes.map(({ host, port }) => ({ host, port })), options)
      return { client: cluster, subscriber: cluster, cluster: true }
    }
  }
}
