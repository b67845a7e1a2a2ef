/**
 * What the engine keeps for presence (SPEC §11): the per-user registry of connections
 * (the cluster-wide limit, GET /v1/presence?userId=) and each presence channel's
 * members with join/leave decided atomically (docs/redis.md "Presence"). Both engines
 * implement PresenceEngine and pass the same contract (test/server/engine/presence-contract.ts).
 */

/** One open connection of a user, as the registry holds it. */
export interface UserConnection {
  readonly connectionId: string
  readonly sessionId: string
  /** Epoch milliseconds. */
  readonly connectedAt: number
  /** The instance holding the socket (its lifecycle instanceId). */
  readonly instanceId: string
}

/** A connection present in a channel; `info` is the JWT's `info` claim as JSON text. */
export interface PresenceMember {
  readonly userId: string
  readonly connectionId: string
  readonly info?: string | undefined
}

export interface PresenceUser {
  readonly userId: string
  readonly connections: number
  /** JSON text. */
  readonly info?: string
}

export interface PresenceSnapshot {
  /** At most the limit asked for. */
  readonly users: readonly PresenceUser[]
  readonly totalUsers: number
  readonly totalConnections: number
}

/** What one sweep of a channel did: leaves it won (and published), entries it expired. */
export interface PresenceSweep {
  readonly channel: string
  readonly left: readonly string[]
  readonly expired: ReadonlyArray<{ readonly userId: string, readonly connectionId: string }>
}

/** A connection of an instance that stopped heartbeating (a crash): its `disconnect` is still owed (SPEC §12). */
export interface LostConnection {
  readonly userId: string
  readonly connectionId: string
  readonly sessionId: string
  /** The instance that held the socket and died. */
  readonly instanceId: string
}

export interface PresenceTimings {
  readonly ttlSeconds: number
  readonly leaveDelayMs: number
}

export interface PresenceEngine {
  /**
   * Adds a connection to its user's registry unless the user already has `limit`
   * unexpired ones (SPEC §11), atomically across instances. False: refused.
   */
  registerUserConnection (userId: string, connection: UserConnection, limit: number, ttlSeconds: number): Promise<boolean>
  /** `instanceId`: the holder (ChannelPresence always gives it), so a later crash of it does not claim this one. */
  unregisterUserConnection (userId: string, connectionId: string, instanceId?: string): Promise<void>
  /** Pushes the expiry of these live connections `ttlSeconds` ahead (each instance, for its own). */
  refreshUserConnections (entries: ReadonlyArray<{ readonly userId: string, readonly connectionId: string }>, ttlSeconds: number): Promise<void>
  /** The user's unexpired connections on every instance, oldest first. */
  userConnections (userId: string): Promise<UserConnection[]>
  /**
   * A connection enters a presence channel. True when it is its user's first (and the
   * user was not leaving): the join frame has then been sent to the channel's subscribers.
   */
  enterPresence (channel: string, member: PresenceMember, timings: PresenceTimings): Promise<boolean>
  /** A connection leaves; its user's last one marks the user leaving for `leaveDelayMs`. */
  exitPresence (channel: string, member: PresenceMember, timings: PresenceTimings): Promise<void>
  /** Keeps this instance's entries of a channel alive (re-adding any that expired meanwhile). */
  refreshPresence (channel: string, members: readonly PresenceMember[], timings: PresenceTimings): Promise<void>
  /**
   * Sweeps `channels` (or, without, the channels due on any instance): expired entries
   * go, and each user leaving past its delay with no connection gets its one leave frame.
   */
  sweepPresence (timings: PresenceTimings, channels?: readonly string[]): Promise<PresenceSweep[]>
  /** At most `limit` users with their connection counts and info, and the exact totals. */
  readPresence (channel: string, limit: number): Promise<PresenceSnapshot>
  /**
   * This instance is alive for `ttlSeconds` more (sent with every refresh). The engine
   * keeps, per instance, the connections registered with its instanceId, so that when
   * the heartbeat lapses another instance can write their `disconnect` events. True
   * when the instance was not known (its first heartbeat, or it was claimed as lost
   * while it lived on, e.g. stalled past the TTL): its list is then empty again.
   */
  heartbeatInstance (instanceId: string, ttlSeconds: number): Promise<boolean>
  /**
   * Instances whose heartbeat lapsed, each claimed by exactly one caller cluster-wide
   * (then forgotten), with the connections they still held: their disconnects are the
   * caller's to write. `self`: the caller's own id, never claimed (it is evidently alive).
   */
  claimLostInstances (self?: string): Promise<LostConnection[]>
  /** A clean stop: the instance and whatever it still held are forgotten, never claimed. */
  retireInstance (instanceId: string): Promise<void>
  /** Join/leave frames (JSON text) of channels this instance listens to. One listener per engine. */
  onPresenceEvent (listener: (channel: string, frame: string) => void): void
}

/** Join frame text: the engines send exactly this (SPEC §11). */
export function joinFrameText (channel: string, member: PresenceMember): string {
  const info = member.info === undefined ? '' : `,"info":${member.info}`
  return `{"type":"join","channel":${JSON.stringify(channel)},"userId":${JSON.stringify(member.userId)}${info}}`
}

export function leaveFrameText (channel: string, userId: string): string {
  return JSON.stringify({ type: 'leave', channel, userId })
}
