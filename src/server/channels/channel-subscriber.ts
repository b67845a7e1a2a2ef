import type { ServerFrame } from '../../protocol/frames.js'
import type { ChannelAccess } from './channel-access.js'

/** Who a subscriber is (SPEC §4 session_established); presence will report it. */
export interface SubscriberIdentity {
  readonly connectionId: string
  readonly userId: string
  readonly sessionId: string
}

/**
 * What the channel layer needs of a subscriber: who it is, which channels it may use,
 * and a way to send it frames. ws/connection.ts's Connection satisfies it; the channel
 * layer keeps each subscriber's subscriptions itself, so it never depends on ws/.
 */
export interface ChannelSubscriber {
  readonly identity: SubscriberIdentity
  readonly access: ChannelAccess
  send (frame: ServerFrame): void
  /** The JWT's `info` claim as JSON text (SPEC §11 presence), when it had one. */
  readonly info?: string | undefined
  /** Sends an already serialized frame (fan-out serializes each once); `type` counts it (default `message`). */
  sendText (text: string, type?: 'message' | 'join' | 'leave'): void
}
