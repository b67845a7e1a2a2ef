/**
 * realtime-gateway/client: the browser and Node SDK (SPEC §6). Zero runtime
 * dependencies: fetch and WebSocket are the platform's, or injected.
 */
export { TicketManager, type Ticket, type TicketManagerOptions, type TokenProvider } from './ticket-manager.js'
export { GatewayClientError, TicketError, AuthenticationError, ConnectionError } from './errors.js'
export { Backoff, type BackoffOptions } from './backoff.js'
export { Subscriptions, type SubscriptionEvents } from './subscriptions.js'
