/**
 * Presence (SPEC §11) on this instance: which of its connections are in which presence
 * channel, the per-user registry behind WS_MAX_CONNECTIONS_PER_USER and
 * GET /v1/presence?userId=, and the timers that keep both alive in the engine. Every
 * transition (join, leave, expiry) is decided by the engine atomically, so exactly one
 * instance wins each: that one calls the lifecycle hook and counts it. The join/leave
 * frames themselves reach subscribers through the engine's live path on every instance.
 */
import type { Engine, EngineLogger } from '../engine/engine.js'
import type { LostConnection, PresenceMember, PresenceTimings } from '../engine/presence-types.js'
import type { PresenceFrame } from '../../protocol/frames.js'
import { GatewayError } from '../errors.js'
import { ChannelPatternList } from './channel-pattern.js'
import type { ChannelSubscriber, SubscriberIdentity } from './channel-subscriber.js'

/** What presence counts (the app's GatewayMetrics). */
export interface PresenceMetrics {
  /** Presence channels with members on this instance, and those members (connections). */
  readonly presenceChannels: { set (value: number): void }
  readonly presenceMembers: { set (value: number): void }
  /** Joins and leaves this instance won (each is sent once cluster-wide). */
  presenceEvent (kind: 'join' | 'leave'): void
  /** Sessions refused by the per-user limit (closed 4429 TOO_MANY_CONNECTIONS). */
  connectionLimitClose (): void
}

/** The lifecycle hooks presence calls (events/lifecycle-events.ts). */
export interface PresenceLifecycle {
  join (who: SubscriberIdentity, channel: string): void
  leave (who: SubscriberIdentity, channel: string): void
  /** A crashed instance's connection, claimed by this one: its `disconnect` (SPEC §12). */
  lostDisconnect (lost: LostConnection): void
}

export interface ChannelPresenceOptions {
  readonly engine: Engine
  readonly channels: readonly string[]
  readonly timings: PresenceTimings
  readonly maxConnectionsPerUser: number
  readonly instanceId: string
  readonly lifecycle: PresenceLifecycle
  readonly logger: EngineLogger
  /** Sends a join/leave frame to this instance's subscribers of a channel (the relay). */
  readonly deliver: (channel: string, text: string, type: 'join' | 'leave') => void
  readonly metrics?: PresenceMetrics
  /** Sweep interval (default: a quarter of the leave delay, between 100 ms and 1 s). */
  readonly sweepIntervalMs?: number
}

/** SPEC §11: at most this many users are listed. */
export const PRESENCE_LIST_LIMIT = 1000

/** SPEC §11: `info` is at most 1 KiB (as JSON text, UTF-8). */
export const MAX_INFO_BYTES = 1024

/**
 * The JWT's `info` claim as JSON text for the ticket (SPEC §11), or undefined when it has
 * none. Over 1 KiB the ticket request is refused 400 INFO_TOO_LARGE, so the app learns
 * of it at once instead of its users silently missing their info.
 */
export function presenceInfoOf (claim: unknown): string | undefined {
  if (claim === undefined || claim === null) return undefined
  const text = JSON.stringify(claim)
  if (Buffer.byteLength(text) > MAX_INFO_BYTES) throw new GatewayError('INFO_TOO_LARGE')
  return text
}

export class ChannelPresence {
  readonly #options: ChannelPresenceOptions
  readonly #patterns: ChannelPatternList
  /** Presence channel → this instance's members there, by connection id. */
  readonly #members = new Map<string, Map<string, PresenceMember>>()
  /** Connections registered in their user's registry (SPEC §11 limit). */
  readonly #registered = new Map<string, { readonly userId: string, readonly connectionId: string, readonly sessionId: string, readonly connectedAt: number }>()
  readonly #timers: NodeJS.Timeout[]
  #sweeping = false
  /** The first heartbeat (SPEC §12 crash disconnects), sent before the first registration. */
  #heartbeat: Promise<void> | undefined

  constructor (options: ChannelPresenceOptions) {
    this.#options = options
    this.#patterns = new ChannelPatternList(options.channels)
    options.engine.presence.onPresenceEvent((channel, text) => {
      options.deliver(channel, text, text.startsWith('{"type":"join"') ? 'join' : 'leave')
    })
    const refreshMs = Math.max(100, Math.floor(options.timings.ttlSeconds * 1000 / 3))
    const sweepMs = options.sweepIntervalMs ?? Math.min(1000, Math.max(100, Math.floor(options.timings.leaveDelayMs / 4)))
    this.#timers = [setInterval(() => { this.#refresh() }, refreshMs), setInterval(() => { this.#sweep() }, sweepMs)]
    for (const timer of this.#timers) timer.unref()
  }

  isPresenceChannel (channel: string): boolean {
    return this.#patterns.matches(channel)
  }

  /**
   * Registers a new session in its user's registry; false when the user already has
   * WS_MAX_CONNECTIONS_PER_USER on all instances (the caller closes it 4429). An engine
   * that cannot answer admits the session: the ticket was just consumed on it, and the
   * next refresh registers nothing (the limit is best effort while Redis is down).
   */
  async register (identity: SubscriberIdentity, connectedAt: number): Promise<boolean> {
    const { engine, maxConnectionsPerUser, timings, instanceId } = this.#options
    const { userId, connectionId, sessionId } = identity
    try {
      // Registered connections are kept with this instance's heartbeat: it must exist before them.
      this.#heartbeat ??= engine.presence.heartbeatInstance(instanceId, timings.ttlSeconds).then(() => {}, (err: unknown) => {
        this.#heartbeat = undefined
        throw err
      })
      await this.#heartbeat
      const admitted = await engine.presence.registerUserConnection(userId, { connectionId, sessionId, connectedAt, instanceId }, maxConnectionsPerUser, timings.ttlSeconds)
      if (!admitted) {
        this.#options.metrics?.connectionLimitClose()
        return false
      }
      this.#registered.set(connectionId, { userId, connectionId, sessionId, connectedAt })
    } catch (err) {
      this.#options.logger.warn({ event: 'presence.register_failed', err }, 'per-user registry not written; session admitted')
    }
    return true
  }

  async unregister (identity: SubscriberIdentity): Promise<void> {
    if (!this.#registered.delete(identity.connectionId)) return
    await this.#options.engine.presence.unregisterUserConnection(identity.userId, identity.connectionId, this.#options.instanceId).catch(() => {
      // Not removed: it expires within PRESENCE_TTL_SECONDS, as a crashed instance's would.
    })
  }

  /** A subscription took effect: a presence channel counts the connection (join when it is the user's first). */
  async enter (subscriber: ChannelSubscriber, channel: string): Promise<void> {
    if (!this.isPresenceChannel(channel)) return
    const { identity } = subscriber
    const member: PresenceMember = { userId: identity.userId, connectionId: identity.connectionId, info: subscriber.info }
    let members = this.#members.get(channel)
    if (members === undefined) {
      members = new Map()
      this.#members.set(channel, members)
    }
    members.set(identity.connectionId, member)
    this.#gauges()
    try {
      if (await this.#options.engine.presence.enterPresence(channel, member, this.#options.timings)) {
        this.#options.metrics?.presenceEvent('join')
        this.#options.lifecycle.join(identity, channel)
      }
    } catch (err) {
      // The next refresh enters it (lua/presence-refresh.lua adds what is missing).
      this.#options.logger.warn({ event: 'presence.enter_failed', err }, 'presence entry not written; retried by the refresh')
    }
  }

  /** The subscription ended (unsubscribe or close). */
  async exit (subscriber: ChannelSubscriber, channel: string): Promise<void> {
    const members = this.#members.get(channel)
    const member = members?.get(subscriber.identity.connectionId)
    if (members === undefined || member === undefined) return
    members.delete(member.connectionId)
    if (members.size === 0) this.#members.delete(channel)
    this.#gauges()
    await this.#options.engine.presence.exitPresence(channel, member, this.#options.timings).catch((err: unknown) => {
      // Left in the engine: it expires within the TTL and the sweep then sends the leave.
      this.#options.logger.warn({ event: 'presence.exit_failed', err }, 'presence exit not written; the entry expires')
    })
  }

  /** Every presence channel of a closed connection, and its registry entry. */
  async close (subscriber: ChannelSubscriber): Promise<void> {
    const channels = [...this.#members].filter(([, members]) => members.has(subscriber.identity.connectionId)).map(([channel]) => channel)
    await Promise.all([...channels.map(async (channel) => { await this.exit(subscriber, channel) }), this.unregister(subscriber.identity)])
  }

  /** The §11 presence body of a channel; PRESENCE_NOT_ENABLED for other channels. Engine errors are the caller's. */
  async query (channel: string): Promise<Omit<PresenceFrame, 'type' | 'id'>> {
    if (!this.isPresenceChannel(channel)) throw new GatewayError('PRESENCE_NOT_ENABLED')
    const snapshot = await this.#options.engine.presence.readPresence(channel, PRESENCE_LIST_LIMIT)
    const users = snapshot.users.map((user) => user.info === undefined
      ? { userId: user.userId, connections: user.connections }
      : { userId: user.userId, connections: user.connections, info: JSON.parse(user.info) as unknown })
    return { channel, users, totalUsers: snapshot.totalUsers, totalConnections: snapshot.totalConnections, truncated: snapshot.totalUsers > users.length }
  }

  /** GET /v1/presence?userId= (SPEC §11): the user's sessions on every instance. */
  async user (userId: string): Promise<{ userId: string, online: boolean, connections: Array<{ connectionId: string, sessionId: string, connectedAt: string }> }> {
    const connections = await this.#options.engine.presence.userConnections(userId)
    return {
      userId,
      online: connections.length > 0,
      connections: connections.map((each) => ({ connectionId: each.connectionId, sessionId: each.sessionId, connectedAt: new Date(each.connectedAt).toISOString() }))
    }
  }

  stop (): void {
    for (const timer of this.#timers) clearInterval(timer)
  }

  /** A clean stop (after the drain closed every socket): this instance is never taken for crashed. */
  async retire (): Promise<void> {
    this.stop()
    if (this.#heartbeat === undefined || !this.#options.engine.isReady()) return
    await this.#options.engine.presence.retireInstance(this.#options.instanceId).catch((err: unknown) => {
      this.#options.logger.warn({ event: 'presence.retire_failed', err }, 'instance not retired; its remaining connections get disconnect events from another instance')
    })
  }

  #gauges (): void {
    let members = 0
    for (const each of this.#members.values()) members += each.size
    this.#options.metrics?.presenceChannels.set(this.#members.size)
    this.#options.metrics?.presenceMembers.set(members)
  }

  /** Every TTL/3: this instance's entries stay alive; a crashed instance's stop being refreshed. */
  #refresh (): void {
    const { engine, timings } = this.#options
    if (!engine.isReady()) return
    for (const [channel, members] of this.#members) {
      engine.presence.refreshPresence(channel, [...members.values()], timings).catch(() => {})
    }
    if (this.#registered.size > 0) engine.presence.refreshUserConnections([...this.#registered.values()], timings.ttlSeconds).catch(() => {})
    if (this.#heartbeat !== undefined) {
      engine.presence.heartbeatInstance(this.#options.instanceId, timings.ttlSeconds).then(async (unknown) => {
        // Claimed as lost while alive (stalled past the TTL): its list went with the claim, so put the live ones back.
        if (unknown) await this.#reregister()
      }).catch(() => {})
    }
  }

  async #reregister (): Promise<void> {
    const { engine, maxConnectionsPerUser, timings, instanceId } = this.#options
    this.#options.logger.warn({ event: 'presence.instance_reclaimed', connections: this.#registered.size }, 'this instance was taken for crashed (heartbeat lapsed); its connections are registered again')
    await Promise.all([...this.#registered.values()].map(async ({ userId, connectionId, sessionId, connectedAt }) => {
      await engine.presence.registerUserConnection(userId, { connectionId, sessionId, connectedAt, instanceId }, maxConnectionsPerUser, timings.ttlSeconds)
    }))
  }

  /** Leaves past their delay and expired entries, on any channel due; the engine decides each once. */
  #sweep (): void {
    const { engine, timings, lifecycle, metrics } = this.#options
    if (this.#sweeping || !engine.isReady()) return
    this.#sweeping = true
    const lost = engine.presence.claimLostInstances(this.#options.instanceId).then((connections) => {
      // Claimed here and nowhere else: each crashed connection's one disconnect.
      for (const connection of connections) lifecycle.lostDisconnect(connection)
    })
    const swept = engine.presence.sweepPresence(timings).then((sweeps) => {
      for (const sweep of sweeps) {
        for (const userId of sweep.left) {
          metrics?.presenceEvent('leave')
          // The leave is the user's, not a connection's: no session or connection id to name.
          lifecycle.leave({ userId, sessionId: '', connectionId: '' }, sweep.channel)
        }
      }
    })
    void Promise.allSettled([lost, swept]).then((outcomes) => {
      this.#sweeping = false
      for (const outcome of outcomes) {
        if (outcome.status === 'rejected') this.#options.logger.warn({ event: 'presence.sweep_failed', err: outcome.reason }, 'presence sweep failed; retried next round')
      }
    })
  }
}
