/**
 * The one table of machine codes the gateway speaks (SPEC §3–§5).
 *
 * Each row says how the code travels: as an HTTP error (`status` + `error`), as a
 * WebSocket close (`close`), or as an in-band error frame; and what a client should
 * do about it (`action`). Routes throw `GatewayError(code)`, the WebSocket layer
 * closes with the row's close code, and the client SDK reads `action` to decide
 * between retrying, re-authenticating, backing off or stopping.
 *
 * This file imports nothing so that the server and the client SDK share it as is.
 */

export type ClientAction = 'retry' | 'reauth' | 'backoff' | 'stop' | 'fix'

export interface CodeDefinition {
  /** HTTP status when the code is an HTTP error. */
  readonly status?: number
  /** HTTP name in the error body (SPEC §3 spells it in upper snake case). */
  readonly error?: string
  /** WebSocket close code when the code ends a connection. */
  readonly close?: number
  /** Human text; stable enough for logs, never parsed by clients. */
  readonly message: string
  readonly action: ClientAction
}

export const codes = {
  // Authentication (POST /ws-ticket, /v1/*)
  MISSING_TOKEN: { status: 401, error: 'UNAUTHORIZED', message: 'Authorization header with a Bearer token is required', action: 'reauth' },
  INVALID_TOKEN: { status: 401, error: 'UNAUTHORIZED', message: 'Token is invalid', action: 'reauth' },
  TOKEN_EXPIRED: { status: 401, error: 'UNAUTHORIZED', message: 'Token has expired', action: 'reauth' },
  MISSING_SESSION: { status: 401, error: 'UNAUTHORIZED', message: 'Token has no session claim', action: 'stop' },
  AUTH_UNAVAILABLE: { status: 503, error: 'SERVICE_UNAVAILABLE', message: 'Token keys could not be fetched', action: 'retry' },
  // A backend banned the user or session (/v1/disconnect): a socket closes 4403, a
  // ticket request gets 401, and a ticket from before the ban is refused with 4403.
  SESSION_REVOKED: { status: 401, error: 'UNAUTHORIZED', close: 4403, message: 'Session was revoked', action: 'stop' },

  // Abuse and capacity
  RATE_LIMITED: { status: 429, error: 'TOO_MANY_REQUESTS', close: 4429, message: 'Rate limit exceeded', action: 'backoff' },
  // SPEC §11: more concurrent sessions of this user (all instances) than WS_MAX_CONNECTIONS_PER_USER; closed right after the handshake.
  TOO_MANY_CONNECTIONS: { close: 4429, message: 'Too many connections of this user', action: 'backoff' },
  // Admission control (SPEC §13): this instance's event loop is saturated; Redis is fine.
  OVERLOADED: { status: 503, error: 'SERVICE_UNAVAILABLE', message: 'Gateway instance is overloaded; retry after Retry-After', action: 'backoff' },

  // Engine availability: the exact 503 texts are part of the wire contract (SPEC §3, §4).
  WS_TICKET_REDIS_NOT_READY: {
    status: 503,
    error: 'SERVICE_UNAVAILABLE',
    close: 1013,
    message: 'WebSocket ticket service temporarily unavailable - Redis not ready',
    action: 'retry'
  },
  REDIS_NOT_READY: { status: 503, error: 'SERVICE_UNAVAILABLE', message: 'Service temporarily unavailable - Redis not ready', action: 'retry' },

  // WebSocket handshake (SPEC §4)
  ORIGIN_NOT_ALLOWED: { status: 403, error: 'FORBIDDEN', message: 'Origin is not allowed', action: 'stop' },
  WS_TICKET_MISSING: { close: 4401, message: 'No ticket was presented', action: 'reauth' },
  WS_TICKET_INVALID: { close: 4401, message: 'Ticket is unknown, expired or already used', action: 'reauth' },
  SERVER_RESTART: { close: 1012, message: 'Server is restarting; reconnect to another instance', action: 'retry' },

  // WebSocket messages (SPEC §5)
  BAD_MESSAGE: { message: 'Message is not a valid frame', action: 'fix' },
  BINARY_NOT_SUPPORTED: { close: 1003, message: 'Binary frames are not supported', action: 'fix' },
  MESSAGE_TOO_LARGE: { close: 1009, message: 'Frame exceeds the payload limit', action: 'fix' },
  FORBIDDEN_CHANNEL: { status: 403, error: 'FORBIDDEN', message: 'Not allowed on this channel', action: 'fix' },
  TOO_MANY_CHANNELS: { message: 'Channel limit per connection reached', action: 'fix' },
  INSUFFICIENT_SCOPE: { status: 403, error: 'FORBIDDEN', message: 'Token lacks the required scope', action: 'stop' },
  SLOW_CONSUMER: { close: 1013, message: 'Client did not drain its buffer in time', action: 'retry' },
  // SPEC §9: a subscription token that is invalid, expired, or for another user or channel. `reauth`:
  // the client asks its app for a fresh token and subscribes once more with it.
  // SPEC §11: a presence request (frame or GET /v1/presence?channel=) for a channel that does not match PRESENCE_CHANNELS.
  PRESENCE_NOT_ENABLED: { status: 400, error: 'BAD_REQUEST', message: 'Channel does not keep presence (PRESENCE_CHANNELS)', action: 'fix' },
  // SPEC §11: the JWT's `info` claim is over 1 KiB as JSON; POST /ws-ticket refuses it rather than dropping it silently.
  INFO_TOO_LARGE: { status: 400, error: 'BAD_REQUEST', message: 'The token\'s info claim exceeds 1024 bytes of JSON', action: 'fix' },
  CHANNEL_TOKEN_INVALID: { message: 'Subscription token is invalid, expired or not for this user and channel', action: 'reauth' },

  // Generic HTTP
  BAD_REQUEST: { status: 400, error: 'BAD_REQUEST', message: 'Request is invalid', action: 'fix' },
  UPGRADE_REQUIRED: { status: 426, error: 'UPGRADE_REQUIRED', message: 'This route only accepts WebSocket upgrades', action: 'fix' },
  NOT_FOUND: { status: 404, error: 'NOT_FOUND', message: 'Route not found', action: 'stop' },
  MESSAGE_TOO_LARGE_FOR_CLIENTS: { status: 413, error: 'PAYLOAD_TOO_LARGE', message: 'A message frame would exceed WS_MAX_PAYLOAD_BYTES', action: 'fix' },
  PAYLOAD_TOO_LARGE: { status: 413, error: 'PAYLOAD_TOO_LARGE', message: 'Request body is too large', action: 'fix' },
  INTERNAL_ERROR: { status: 500, error: 'INTERNAL_SERVER_ERROR', message: 'Internal error', action: 'retry' }
} as const satisfies Record<string, CodeDefinition>

export type Code = keyof typeof codes
