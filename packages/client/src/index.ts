/**
 * @realtime-gateway/client: the browser and Node SDK (SPEC §6). Zero runtime
 * dependencies: fetch and WebSocket are the platform's, or injected.
 */
export {
  RealtimeClient,
  type RealtimeClientOptions,
  type ClientStatus,
  type ClientEvents,
  type ChannelMessage,
  type ChannelMap,
  type ChannelName,
  type SubscribeOptions,
  type SubscribedInfo,
  type SendAck,
  type PublishOptions,
  type PublishResult,
  type PresenceInfo,
  type PresenceChange,
  type SessionInfo,
  type ConnectionStatus
} from './realtime-client.js'
export { TicketManager, type Ticket, type TicketManagerOptions, type TokenProvider } from './ticket-manager.js'
export { GatewayClientError, TicketError, AuthenticationError, ConnectionError } from './errors.js'
export { Backoff, type BackoffOptions } from './backoff.js'
export { Subscriptions, type SubscriptionEvents } from './subscriptions.js'
export { Poller, type PollerOptions, type PollAnswer } from './polling.js'
export type { ClientLogger } from './logger.js'
export type { PageEnvironment, EventTargetLike } from './visibility.js'
export type { WebSocketLike, WebSocketConstructor, MessageEventLike, CloseEventLike } from './websocket.js'
