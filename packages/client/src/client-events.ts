import type { GatewayClientError } from './errors.js'
import type { SubscribedInfo } from './subscribe-requests.js'

/** What a RealtimeClient reports (`client.on(name, listener)`), by event name. */
export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'

export interface ChannelMessage {
  readonly channel: string
  readonly offset: string
  readonly data: unknown
}

export interface SessionInfo {
  readonly connectionId: string
  readonly userId: string
  readonly sessionId: string
}

export interface ClientEvents {
  status: ClientStatus
  session: SessionInfo
  message: ChannelMessage
  subscribed: SubscribedInfo
  /** A resume could not replay what was missed (`recovered:false`). */
  recoveryFailed: { readonly channel: string }
  /** Every failure, terminal or not; `getConnectionStatus().lastError` keeps the last. */
  error: GatewayClientError
}
