/**
 * Presence in memory (the embedded engine, one instance): the same transitions as
 * the Redis scripts (redis-presence.ts, lua/presence-*.lua, lua/user-*.lua), checked
 * by the same contract.
 */
import {
  joinFrameText,
  leaveFrameText,
  type LostConnection,
  type PresenceEngine,
  type PresenceMember,
  type PresenceSnapshot,
  type PresenceSweep,
  type PresenceTimings,
  type UserConnection
} from './presence-types.js'

interface ChannelPresence {
  /** connectionId → entry and expiry. */
  readonly entries: Map<string, { readonly userId: string, expiresAt: number }>
  readonly counts: Map<string, number>
  readonly info: Map<string, string>
  /** userId → leave due. */
  readonly leaving: Map<string, number>
}

export class MemoryPresence implements PresenceEngine {
  readonly #now: () => number
  readonly #assertReady: () => void
  readonly #users = new Map<string, Map<string, { readonly connection: UserConnection, expiresAt: number }>>()
  readonly #channels = new Map<string, ChannelPresence>()
  /** instanceId → heartbeat expiry, and the connections each instance holds (SPEC §12 crash disconnects). */
  readonly #instances = new Map<string, number>()
  readonly #held = new Map<string, Map<string, LostConnection>>()
  #listener: ((channel: string, frame: string) => void) | undefined

  constructor (options: { readonly now: () => number, readonly assertReady: () => void }) {
    this.#now = options.now
    this.#assertReady = options.assertReady
  }

  onPresenceEvent (listener: (channel: string, frame: string) => void): void {
    this.#listener = listener
  }

  async registerUserConnection (userId: string, connection: UserConnection, limit: number, ttlSeconds: number): Promise<boolean> {
    this.#assertReady()
    const now = this.#now()
    const registry = this.#users.get(userId) ?? new Map()
    for (const [id, entry] of registry) if (entry.expiresAt <= now) registry.delete(id)
    if (!registry.has(connection.connectionId) && registry.size >= limit) return false
    registry.set(connection.connectionId, { connection, expiresAt: now + ttlSeconds * 1000 })
    this.#users.set(userId, registry)
    const held = this.#held.get(connection.instanceId) ?? new Map<string, LostConnection>()
    held.set(connection.connectionId, { userId, connectionId: connection.connectionId, sessionId: connection.sessionId, instanceId: connection.instanceId })
    this.#held.set(connection.instanceId, held)
    return true
  }

  async unregisterUserConnection (userId: string, connectionId: string, instanceId?: string): Promise<void> {
    this.#assertReady()
    if (instanceId !== undefined) this.#held.get(instanceId)?.delete(connectionId)
    const registry = this.#users.get(userId)
    registry?.delete(connectionId)
    if (registry?.size === 0) this.#users.delete(userId)
  }

  async refreshUserConnections (entries: ReadonlyArray<{ readonly userId: string, readonly connectionId: string }>, ttlSeconds: number): Promise<void> {
    this.#assertReady()
    for (const { userId, connectionId } of entries) {
      const entry = this.#users.get(userId)?.get(connectionId)
      if (entry !== undefined) entry.expiresAt = this.#now() + ttlSeconds * 1000
    }
  }

  async userConnections (userId: string): Promise<UserConnection[]> {
    this.#assertReady()
    const now = this.#now()
    return [...(this.#users.get(userId)?.values() ?? [])].filter((entry) => entry.expiresAt > now)
      .map((entry) => entry.connection).sort((a, b) => a.connectedAt - b.connectedAt)
  }

  async enterPresence (channel: string, member: PresenceMember, timings: PresenceTimings): Promise<boolean> {
    this.#assertReady()
    const presence = this.#channel(channel)
    const expiresAt = this.#now() + timings.ttlSeconds * 1000
    const entry = presence.entries.get(member.connectionId)
    if (entry !== undefined) {
      entry.expiresAt = expiresAt
      return false
    }
    presence.entries.set(member.connectionId, { userId: member.userId, expiresAt })
    const count = (presence.counts.get(member.userId) ?? 0) + 1
    presence.counts.set(member.userId, count)
    if (count !== 1) return false
    if (member.info === undefined) presence.info.delete(member.userId)
    else presence.info.set(member.userId, member.info)
    if (presence.leaving.delete(member.userId)) return false
    this.#emit(channel, joinFrameText(channel, member))
    return true
  }

  async exitPresence (channel: string, member: PresenceMember, timings: PresenceTimings): Promise<void> {
    this.#assertReady()
    const presence = this.#channels.get(channel)
    if (presence === undefined || !presence.entries.delete(member.connectionId)) return
    this.#decrement(presence, member.userId, this.#now() + timings.leaveDelayMs)
  }

  async refreshPresence (channel: string, members: readonly PresenceMember[], timings: PresenceTimings): Promise<void> {
    for (const member of members) await this.enterPresence(channel, member, timings)
  }

  async sweepPresence (_timings: PresenceTimings, channels?: readonly string[]): Promise<PresenceSweep[]> {
    this.#assertReady()
    const now = this.#now()
    const sweeps: PresenceSweep[] = []
    for (const channel of channels ?? [...this.#channels.keys()]) {
      const presence = this.#channels.get(channel)
      if (presence === undefined) continue
      const expired: Array<{ userId: string, connectionId: string }> = []
      for (const [connectionId, entry] of presence.entries) {
        if (entry.expiresAt > now) continue
        presence.entries.delete(connectionId)
        expired.push({ userId: entry.userId, connectionId })
        this.#decrement(presence, entry.userId, now)
      }
      const left: string[] = []
      for (const [userId, due] of presence.leaving) {
        if (due > now) continue
        presence.leaving.delete(userId)
        if (presence.counts.has(userId)) continue
        presence.info.delete(userId)
        left.push(userId)
        this.#emit(channel, leaveFrameText(channel, userId))
      }
      if (presence.entries.size === 0 && presence.leaving.size === 0) this.#channels.delete(channel)
      if (left.length > 0 || expired.length > 0 || channels !== undefined) sweeps.push({ channel, left, expired })
    }
    return sweeps
  }

  async heartbeatInstance (instanceId: string, ttlSeconds: number): Promise<boolean> {
    this.#assertReady()
    const known = this.#instances.has(instanceId)
    this.#instances.set(instanceId, this.#now() + ttlSeconds * 1000)
    return !known
  }

  async claimLostInstances (self?: string): Promise<LostConnection[]> {
    this.#assertReady()
    const now = this.#now()
    const lost: LostConnection[] = []
    for (const [instanceId, expiresAt] of this.#instances) {
      if (expiresAt > now || instanceId === self) continue
      this.#instances.delete(instanceId)
      lost.push(...(this.#held.get(instanceId)?.values() ?? []))
      this.#held.delete(instanceId)
    }
    return lost
  }

  async retireInstance (instanceId: string): Promise<void> {
    this.#assertReady()
    this.#instances.delete(instanceId)
    this.#held.delete(instanceId)
  }

  async readPresence (channel: string, limit: number): Promise<PresenceSnapshot> {
    this.#assertReady()
    const presence = this.#channels.get(channel)
    if (presence === undefined) return { users: [], totalUsers: 0, totalConnections: 0 }
    const users = [...presence.counts].slice(0, limit).map(([userId, connections]) => {
      const info = presence.info.get(userId)
      return info === undefined ? { userId, connections } : { userId, connections, info }
    })
    return { users, totalUsers: presence.counts.size, totalConnections: presence.entries.size }
  }

  /** A user's connection gone: its last one marks it leaving, due at `due` (keeps an earlier due). */
  #decrement (presence: ChannelPresence, userId: string, due: number): void {
    const count = (presence.counts.get(userId) ?? 1) - 1
    if (count > 0) {
      presence.counts.set(userId, count)
      return
    }
    presence.counts.delete(userId)
    presence.leaving.set(userId, Math.min(due, presence.leaving.get(userId) ?? due))
  }

  #channel (channel: string): ChannelPresence {
    let presence = this.#channels.get(channel)
    if (presence === undefined) {
      presence = { entries: new Map(), counts: new Map(), info: new Map(), leaving: new Map() }
      this.#channels.set(channel, presence)
    }
    return presence
  }

  /** Asynchronously, as Redis pub/sub delivers. */
  #emit (channel: string, frame: string): void {
    queueMicrotask(() => { this.#listener?.(channel, frame) })
  }
}
