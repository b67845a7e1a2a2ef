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

/** One user present in a channel (SPEC §11): `info` is the JWT's `info` claim. */
export interface PresenceUser {
  userId: string
  connections: number
  info?: unknown
}

/** The answer to a `presence` request (SPEC §11): at most 1000 users listed, `truncated` beyond. */
export interface PresenceFrame {
  type: 'presence'
  channel: string
  id?: string | number
  users: PresenceUser[]
  totalUsers: number
  totalConnections: number
  truncated: boolean
}

/** A user's first connection entered a presence channel (SPEC §11), to its subscribers. */
export interface JoinFrame {
  type: 'join'
  channel: string
  userId: string
  info?: unknown
}

/** A user's last connection left a presence channel and none came back within the delay (SPEC §11). */
export interface LeaveFrame {
  type: 'leave'
  channel: string
  userId: string
}

/** Every frame the gateway sends, tagged by `type`. */
export type ServerFrame = SessionEstablishedFrame | PongFrame | ErrorFrame | SubscribedFrame | UnsubscribedFrame | MessageFrame | AckFrame
  | PublishedFrame

/**
 * The presence frames (SPEC §11). Not in ServerFrame yet: the server's per-type frame
 * metrics are keyed by that union, so they join it with the server side of presence.
 */
export type PresenceServerFrame = PresenceFrame | JoinFrame | LeaveFrame
