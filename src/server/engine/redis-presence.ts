/**
 * Presence on Redis (SPEC §11; layout and costs in docs/redis.md "Presence"): the
 * per-user registry and each presence channel's members, one Lua script per
 * transition, each on one hash slot, so a join or a leave is one round trip and the
 * same code runs on a Cluster. Join and leave frames are published by the scripts on
 * the channel's live pub/sub channel, prefixed `!` (never an offset), so every
 * instance delivers them and only the script that decided the transition sends one.
 */
import { readFileSync } from 'node:fs'
import type { ClientContext, Result } from 'ioredis'
import type { RedisClient } from './redis-connection.js'
import type { RedisCommandRunner } from './redis-command-runner.js'
import type { PresenceKeys, RedisKeys } from './redis-keys.js'
import {
  joinFrameText,
  type LostConnection,
  type PresenceEngine,
  type PresenceMember,
  type PresenceSnapshot,
  type PresenceSweep,
  type PresenceTimings,
  type UserConnection
} from './presence-types.js'

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    userRegisterScript (connections: string, details: string, connectionId: string, limit: number, ttlMs: number, json: string): Result<number, Context>
    userRefreshScript (connections: string, details: string, ttlMs: number, ...connectionIds: string[]): Result<number, Context>
    userUnregisterScript (connections: string, details: string, connectionId: string): Result<number, Context>
    userRegisterHeldScript (connections: string, details: string, held: string, connectionId: string, limit: number, ttlMs: number, json: string, heldJson: string): Result<number, Context>
    userUnregisterHeldScript (connections: string, details: string, held: string, connectionId: string): Result<number, Context>
    userListScript (connections: string, details: string): Result<string[], Context>
    presenceEnterScript (entries: string, counts: string, info: string, leaving: string, member: string, userId: string, ttlMs: number,
      infoJson: string, frame: string, live: string, sharded: '0' | '1', keepMs: number): Result<[number, number], Context>
    presenceExitScript (entries: string, counts: string, leaving: string, member: string, userId: string, delayMs: number): Result<number, Context>
    presenceRefreshScript (entries: string, counts: string, info: string, leaving: string, ttlMs: number, keepMs: number, live: string,
      sharded: '0' | '1', ...triples: string[]): Result<number, Context>
    presenceSweepScript (entries: string, counts: string, info: string, leaving: string, limit: number, live: string, sharded: '0' | '1',
      channelJson: string): Result<[string[], string[], string], Context>
    presenceReadScript (entries: string, counts: string, info: string, limit: number): Result<Array<string | number>, Context>
    instanceHeartbeatScript (instances: string, instanceId: string, ttlMs: number): Result<number, Context>
    instanceClaimScript (instances: string, limit: number, self: string): Result<string[], Context>
    instanceTakeScript (connections: string): Result<string[], Context>
  }
}

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')
const SCRIPTS: ReadonlyArray<[name: string, keys: number, file: string]> = [
  ['userRegisterScript', 2, 'user-register'], ['userRefreshScript', 2, 'user-refresh'], ['userListScript', 2, 'user-list'], ['userUnregisterScript', 2, 'user-unregister'],
  // The same two scripts with the instance's held-connections hash as a third key (not on a Cluster).
  ['userRegisterHeldScript', 3, 'user-register'], ['userUnregisterHeldScript', 3, 'user-unregister'],
  ['presenceEnterScript', 4, 'presence-enter'], ['presenceExitScript', 3, 'presence-exit'], ['presenceRefreshScript', 4, 'presence-refresh'],
  ['presenceSweepScript', 4, 'presence-sweep'], ['presenceReadScript', 3, 'presence-read'],
  ['instanceHeartbeatScript', 1, 'instance-heartbeat'], ['instanceClaimScript', 1, 'instance-claim'], ['instanceTakeScript', 1, 'instance-take']
]

/** Entries and leaves handled per sweep call, and channels per sweep round. */
const SWEEP_BATCH = 500
const DUE_CHANNELS_PER_ROUND = 50
/** Lapsed instances claimed per sweep round. */
const LOST_INSTANCES_PER_ROUND = 10

const memberOf = (member: { userId: string, connectionId: string }): string => `${member.connectionId}:${member.userId}`
/** Keys outlive their entries by the leave delay and a margin, so a quiet channel cleans itself up. */
const keepMs = (timings: PresenceTimings): number => timings.ttlSeconds * 2000 + timings.leaveDelayMs + 60_000

export interface RedisPresenceOptions {
  readonly client: RedisClient
  readonly keys: RedisKeys
  readonly runner: RedisCommandRunner
  readonly sharded: boolean
  readonly assertReady: () => void
}

export class RedisPresence implements PresenceEngine {
  readonly #client: RedisClient
  readonly #keys: RedisKeys
  readonly #runner: RedisCommandRunner
  readonly #sharded: '0' | '1'
  readonly #assertReady: () => void
  #listener: ((channel: string, frame: string) => void) | undefined

  constructor (options: RedisPresenceOptions) {
    this.#client = options.client
    this.#keys = options.keys
    this.#runner = options.runner
    this.#sharded = options.sharded ? '1' : '0'
    this.#assertReady = options.assertReady
    for (const [name, numberOfKeys, file] of SCRIPTS) options.client.defineCommand(name, { numberOfKeys, lua: lua(file) })
  }

  /** A live payload of `channel` that is a join/leave frame (`!` + JSON); false for anything else. */
  handleLive (channel: string, payload: string): boolean {
    if (!payload.startsWith('!')) return false
    this.#listener?.(channel, payload.slice(1))
    return true
  }

  onPresenceEvent (listener: (channel: string, frame: string) => void): void {
    this.#listener = listener
  }

  async registerUserConnection (userId: string, connection: UserConnection, limit: number, ttlSeconds: number): Promise<boolean> {
    this.#assertReady()
    const keys = this.#keys.user(userId)
    const json = JSON.stringify({ sessionId: connection.sessionId, connectedAt: connection.connectedAt, instanceId: connection.instanceId })
    const held = this.#keys.instanceConnections(connection.instanceId)
    const heldJson = JSON.stringify({ userId, sessionId: connection.sessionId })
    if (this.#sharded === '0') {
      // One script for both: the registry and the instance's own list, one command per connect.
      const added = await this.#runner.run('script:user-register', async () =>
        await this.#client.userRegisterHeldScript(keys.connections, keys.details, held, connection.connectionId, limit, ttlSeconds * 1000, json, heldJson))
      return added === 1
    }
    // Cluster: the instance's list is on another slot; the same auto-pipelined write (one round trip), undone if refused.
    const [added] = await Promise.all([
      this.#runner.run('script:user-register', async () =>
        await this.#client.userRegisterScript(keys.connections, keys.details, connection.connectionId, limit, ttlSeconds * 1000, json)),
      this.#runner.run('hset', async () => await this.#client.hset(held, connection.connectionId, heldJson))
    ])
    if (added !== 1) await this.#runner.run('hdel', async () => await this.#client.hdel(held, connection.connectionId))
    return added === 1
  }

  async unregisterUserConnection (userId: string, connectionId: string, instanceId?: string): Promise<void> {
    this.#assertReady()
    const keys = this.#keys.user(userId)
    const held = instanceId === undefined ? undefined : this.#keys.instanceConnections(instanceId)
    if (held !== undefined && this.#sharded === '0') {
      await this.#runner.run('script:user-unregister', async () => await this.#client.userUnregisterHeldScript(keys.connections, keys.details, held, connectionId))
      return
    }
    await Promise.all([
      this.#runner.run('script:user-unregister', async () => await this.#client.userUnregisterScript(keys.connections, keys.details, connectionId)),
      held === undefined ? undefined : this.#runner.run('hdel', async () => await this.#client.hdel(held, connectionId))
    ])
  }

  async refreshUserConnections (entries: ReadonlyArray<{ readonly userId: string, readonly connectionId: string }>, ttlSeconds: number): Promise<void> {
    this.#assertReady()
    const byUser = new Map<string, string[]>()
    for (const { userId, connectionId } of entries) byUser.set(userId, [...(byUser.get(userId) ?? []), connectionId])
    // One script per user (each on its own slot), all written together by auto-pipelining.
    await Promise.all([...byUser].map(async ([userId, ids]) => {
      const keys = this.#keys.user(userId)
      await this.#runner.run('script:user-refresh', async () => await this.#client.userRefreshScript(keys.connections, keys.details, ttlSeconds * 1000, ...ids))
    }))
  }

  async userConnections (userId: string): Promise<UserConnection[]> {
    this.#assertReady()
    const keys = this.#keys.user(userId)
    const flat = await this.#runner.run('script:user-list', async () => await this.#client.userListScript(keys.connections, keys.details))
    const connections: UserConnection[] = []
    for (let index = 0; index + 1 < flat.length; index += 2) {
      const details = JSON.parse(flat[index + 1] ?? '{}') as { sessionId: string, connectedAt: number, instanceId: string }
      connections.push({ connectionId: flat[index] ?? '', sessionId: details.sessionId, connectedAt: details.connectedAt, instanceId: details.instanceId })
    }
    return connections.sort((a, b) => a.connectedAt - b.connectedAt)
  }

  async enterPresence (channel: string, member: PresenceMember, timings: PresenceTimings): Promise<boolean> {
    this.#assertReady()
    const keys = this.#keys.presence(channel)
    const [joined, expiry] = await this.#runner.run('script:presence-enter', async () => await this.#client.presenceEnterScript(
      keys.entries, keys.counts, keys.info, keys.leaving, memberOf(member), member.userId, timings.ttlSeconds * 1000,
      member.info ?? '', joinFrameText(channel, member), keys.live, this.#sharded, keepMs(timings)))
    await this.#due(channel, expiry)
    return joined === 1
  }

  async exitPresence (channel: string, member: PresenceMember, timings: PresenceTimings): Promise<void> {
    this.#assertReady()
    const keys = this.#keys.presence(channel)
    const due = await this.#runner.run('script:presence-exit', async () => await this.#client.presenceExitScript(
      keys.entries, keys.counts, keys.leaving, memberOf(member), member.userId, timings.leaveDelayMs))
    if (due > 0) await this.#due(channel, due)
  }

  async refreshPresence (channel: string, members: readonly PresenceMember[], timings: PresenceTimings): Promise<void> {
    this.#assertReady()
    if (members.length === 0) return
    const keys = this.#keys.presence(channel)
    const triples = members.flatMap((member) => [memberOf(member), member.userId, joinFrameText(channel, member)])
    const expiry = await this.#runner.run('script:presence-refresh', async () => await this.#client.presenceRefreshScript(
      keys.entries, keys.counts, keys.info, keys.leaving, timings.ttlSeconds * 1000, keepMs(timings), keys.live, this.#sharded, ...triples))
    await this.#due(channel, expiry)
  }

  async sweepPresence (timings: PresenceTimings, channels?: readonly string[]): Promise<PresenceSweep[]> {
    this.#assertReady()
    const names = channels ?? await this.#runner.run('zrangebyscore', async () =>
      await this.#client.zrangebyscore(this.#keys.presenceDue, '-inf', Date.now(), 'LIMIT', 0, DUE_CHANNELS_PER_ROUND))
    return await Promise.all(names.map(async (channel) => await this.#sweep(channel)))
  }

  async heartbeatInstance (instanceId: string, ttlSeconds: number): Promise<boolean> {
    this.#assertReady()
    const held = this.#keys.instanceConnections(instanceId)
    // The list outlives a lapsed heartbeat long enough to be claimed, and no longer.
    const [added] = await Promise.all([
      this.#runner.run('script:instance-heartbeat', async () => await this.#client.instanceHeartbeatScript(this.#keys.instances, instanceId, ttlSeconds * 1000)),
      this.#runner.run('pexpire', async () => await this.#client.pexpire(held, ttlSeconds * 3000 + 60_000))
    ])
    return added === 1
  }

  async claimLostInstances (self = ''): Promise<LostConnection[]> {
    this.#assertReady()
    const lapsed = await this.#runner.run('script:instance-claim', async () => await this.#client.instanceClaimScript(this.#keys.instances, LOST_INSTANCES_PER_ROUND, self))
    const lost = await Promise.all(lapsed.map(async (instanceId) => {
      const flat = await this.#runner.run('script:instance-take', async () => await this.#client.instanceTakeScript(this.#keys.instanceConnections(instanceId)))
      const connections: LostConnection[] = []
      for (let index = 0; index + 1 < flat.length; index += 2) {
        const { userId, sessionId } = JSON.parse(flat[index + 1] ?? '{}') as { userId: string, sessionId: string }
        connections.push({ userId, sessionId, connectionId: flat[index] ?? '', instanceId })
      }
      return connections
    }))
    return lost.flat()
  }

  async retireInstance (instanceId: string): Promise<void> {
    this.#assertReady()
    await Promise.all([
      this.#runner.run('zrem', async () => await this.#client.zrem(this.#keys.instances, instanceId)),
      this.#runner.run('del', async () => await this.#client.del(this.#keys.instanceConnections(instanceId)))
    ])
  }

  async readPresence (channel: string, limit: number): Promise<PresenceSnapshot> {
    this.#assertReady()
    const keys = this.#keys.presence(channel)
    const flat = await this.#runner.run('script:presence-read', async () => await this.#client.presenceReadScript(keys.entries, keys.counts, keys.info, limit))
    const users = []
    for (let index = 2; index + 2 < flat.length; index += 3) {
      const info = String(flat[index + 2])
      users.push({ userId: String(flat[index]), connections: Number(flat[index + 1]), ...(info === '' ? {} : { info }) })
    }
    return { users, totalUsers: Number(flat[0]), totalConnections: Number(flat[1]) }
  }

  async #sweep (channel: string): Promise<PresenceSweep> {
    const keys: PresenceKeys = this.#keys.presence(channel)
    const [left, expired, next] = await this.#runner.run('script:presence-sweep', async () => await this.#client.presenceSweepScript(
      keys.entries, keys.counts, keys.info, keys.leaving, SWEEP_BATCH, keys.live, this.#sharded, JSON.stringify(channel)))
    const due = Number(next)
    // The script knows the channel's next deadline; an enter racing this write is put back by its instance's next refresh.
    if (due === 0) await this.#runner.run('zrem', async () => await this.#client.zrem(this.#keys.presenceDue, channel))
    else await this.#runner.run('zadd', async () => await this.#client.zadd(this.#keys.presenceDue, due, channel))
    const separator = (member: string): number => member.indexOf(':')
    return { channel, left, expired: expired.map((member) => ({ connectionId: member.slice(0, separator(member)), userId: member.slice(separator(member) + 1) })) }
  }

  /** The channel needs a sweep by `at` at the latest (ZADD LT keeps an earlier deadline). */
  async #due (channel: string, at: number): Promise<void> {
    await this.#runner.run('zadd', async () => await this.#client.zadd(this.#keys.presenceDue, 'LT', at, channel))
  }
}
