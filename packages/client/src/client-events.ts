import type { GatewayClientError } from './errors.js'
import type { SubscribedInfo } from './subscribe-requests.js'

/** What a RealtimeClient reports (`client.on(name, listener)`), by event name. */
export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'

/**
 * What an app says its channels carry, e.g. `{ 'chat:lobby': { text: string } }`; a
 * family of channels takes a template-literal key (room:${string}). The SDK does
 * not check `data` at run time: the type is the app's word for what its backends publish.
 */
export type ChannelMap = object

/** The channel names of `Messages`, as `subscribe` takes them. */
export type ChannelName<Messages extends ChannelMap> = keyof Messages & string

/**
 * A delivered message; with a `Messages` map, a union discriminated by `channel`, so
 * checking `message.channel` narrows `data`. Without one: any channel, `data: unknown`.
 */
export type ChannelMessage<Messages extends ChannelMap = Record<string, unknown>> = {
  readonly [Channel in ChannelName<Messages>]: {
    readonly channel: Channel
    readonly offset: string
    readonly data: Messages[Channel]
    /** The publishing user of a client publish (SPEC §9), set by the gateway; absent for backend publishes. */
    readonly from?: string
  }
}[ChannelName<Messages>]

export interface SessionInfo {
  readonly connectionId: string
  readonly userId: string
  readonly sessionId: string
}

export interface ClientEvents<Messages extends ChannelMap = Record<string, unknown>> {
  status: ClientStatus
  session: SessionInfo
  message: ChannelMessage<Messages>
  subscribed: SubscribedInfo
  /** A resume could not replay what was missed (`recovered:false`). */
  recoveryFailed: { readonly channel: string }
  /** Every failure, terminal or not; `getConnectionStatus().lastError` keeps the last. */
  error: GatewayClientError
  /** A user's first connection entered a presence channel this client is subscribed to (SPEC §11). */
  join: PresenceChange
  /** A user's last connection left a presence channel (after the gateway's leave delay). */
  leave: PresenceChange
}

/** `join` and `leave` events; `info` (the user's JWT `info` claim) comes with a join only. */
export interface PresenceChange {
  readonly channel: string
  readonly userId: string
  readonly info?: unknown
}

/** What `presence(channel)` resolves to (SPEC §11): at most 1000 users listed, `truncated` beyond. */
export interface PresenceInfo {
  readonly channel: string
  readonly users: ReadonlyArray<{ readonly userId: string, readonly connections: number, readonly info?: unknown }>
  readonly totalUsers: number
  readonly totalConnections: number
  readonly truncated: boolean
}
