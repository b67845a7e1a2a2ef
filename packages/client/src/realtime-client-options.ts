import type { BackoffOptions } from './backoff.js'
import type { ClientLogger } from './logger.js'
import type { TicketManager, TicketManagerOptions, TokenProvider } from './ticket-manager.js'
import type { PageEnvironment } from './visibility.js'
import type { WebSocketConstructor } from './websocket.js'

export interface RealtimeClientOptions {
  /** The gateway's HTTP origin, e.g. `https://rt.example.com`. The WebSocket URL is derived from it. */
  readonly url: string
  /** Supplies the app's JWT; called with `forceRefresh: true` after the gateway refused one. */
  readonly getToken: TokenProvider
  /** Defaults to the global `WebSocket` (browsers); pass `ws`'s class in Node 20. */
  readonly WebSocket?: WebSocketConstructor
  readonly fetch?: typeof fetch
  /** SPEC §2 WS_PATH. */
  readonly wsPath?: string
  /** Consecutive failed reconnects before giving up with a ConnectionError (default: never give up). */
  readonly maxReconnectAttempts?: number
  /** Reconnect delays: full jitter, 1 s doubling to 16 s by default (SPEC §6). */
  readonly backoff?: BackoffOptions
  /** In polling mode, how often the WebSocket is tried again: 5 s doubling to 60 s by default. */
  readonly probeBackoff?: BackoffOptions
  /** How long `GET /v1/poll` may be held (default 25 s, at most 30 s). */
  readonly pollTimeoutMs?: number
  /**
   * App-level heartbeat (browsers cannot see protocol pings): a `ping` every
   * `intervalMs` (default: the server's heartbeatIntervalMs), and the socket is
   * declared dead when nothing at all arrived for `intervalMs + timeoutMs`.
   */
  readonly heartbeat?: { readonly intervalMs?: number, readonly timeoutMs?: number }
  /** A socket that has not reached `session_established` by then is abandoned (default 20 s). */
  readonly connectTimeoutMs?: number
  /** Unacknowledged `send`s kept for retry; the next one is refused with SEND_QUEUE_FULL (default 100). */
  readonly maxPendingSends?: number
  /** Frames larger than this are refused before sending (the server would close with 1009). Default 65536, SPEC §2. */
  readonly maxPayloadBytes?: number
  /** Where the visibility/online listener attaches; `null` attaches none. Defaults to the page's document and window. */
  readonly page?: PageEnvironment | null
  readonly logger?: ClientLogger
  /** Shares or customises ticket fetching; built from the options above otherwise. */
  readonly tickets?: TicketManager
  /** Passed to the TicketManager this client builds (e.g. the 503 retry delays). */
  readonly ticketOptions?: Omit<TicketManagerOptions, 'baseUrl' | 'getToken' | 'fetch'>
}
