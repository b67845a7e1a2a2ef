/**
 * The frames the gateway sends (SPEC §4–§5), as one union tagged by `type`. Plain
 * types with no imports: the client SDK's build takes this file as it is, without
 * TypeBox (the client frames' schemas live in frames.ts).
 */
export interface SessionEstablishedFrame {
  type: 'session_established'
  connectionId: string
  userId: string
  sessionId: string
  heartbeatIntervalMs: number
  serverTime: string
}

export interface PongFrame {
  type: 'pong'
  id?: string | number
}

export interface ErrorFrame {
  type: 'error'
  code: string
  message?: string
  id?: string | number
}

export interface SubscribedFrame {
  type: 'subscribed'
  channel: string
  id?: string | number
  /** Messages that follow have later offsets; resume from here. */
  offset: string
  /** False: `since` predates the retained history (or the history was lost). */
  recovered: boolean
}

export interface UnsubscribedFrame {
  type: 'unsubscribed'
  channel: string
  id?: string | number
}

/** Delivery: `{"type":"message","channel","offset","data"}` (serialized once per message, see hub). */
export interface MessageFrame {
  type: 'message'
  channel: string
  offset: string
  data: unknown
  /** The publishing user of a client publish (SPEC §9), set by the gateway; absent for backend publishes. */
  from?: string
}

export interface AckFrame {
  type: 'ack'
  id: string | number
}

/** A client publish was appended (SPEC §9): `offset` is the message's. */
export interface PublishedFrame {
  type: 'published'
  channel: string
  id?: string | number
  offset: string
}

/** SPEC §11: a user's first connection entered a presence channel (no offset: not in the history). */
export interface JoinFrame {
  type: 'join'
  channel: string
  userId: string
  /** The JWT's `info` claim. */
  info?: unknown
}

/** SPEC §11: a user's last connection left and none came back within PRESENCE_LEAVE_DELAY_MS. */
export interface LeaveFrame {
  type: 'leave'
  channel: string
  userId: string
}

/** One user present in a channel (SPEC §11). */
export interface PresenceUser {
  userId: string
  /** Its connections in the channel, on every instance. */
  connections: number
  info?: unknown
}

/** SPEC §11: the answer to a `presence` frame (GET /v1/presence?channel= answers the same body). */
export interface PresenceFrame {
  type: 'presence'
  channel: string
  id?: string | number
  /** At most 1000. */
  users: PresenceUser[]
  totalUsers: number
  totalConnections: number
  /** True when users were left out of `users` (totalUsers > users.length). */
  truncated: boolean
}

/** Every frame the gateway sends, tagged by `type`. */
export type ServerFrame = SessionEstablishedFrame | PongFrame | ErrorFrame | SubscribedFrame | UnsubscribedFrame | MessageFrame | AckFrame
  | PublishedFrame | JoinFrame | LeaveFrame | PresenceFrame
