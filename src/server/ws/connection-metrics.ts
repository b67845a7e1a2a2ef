import type { ClientFrameType, ServerFrame } from '../../protocol/frames.js'

/** Frames received, by type; `invalid` got BAD_MESSAGE, `binary` was closed with 1003. */
export type ReceivedFrameKind = ClientFrameType | 'invalid' | 'binary'
/** Frames sent, by type (`message` is the fan-out delivery). */
export type SentFrameKind = ServerFrame['type']

/**
 * Connections the server itself ends: the close codes' names of protocol/codes.ts,
 * and `HEARTBEAT_TIMEOUT` for a dead peer terminated without a close frame.
 */
export type ServerCloseReason = 'SLOW_CONSUMER' | 'RATE_LIMITED' | 'SESSION_REVOKED' | 'SERVER_RESTART' | 'BINARY_NOT_SUPPORTED' | 'HEARTBEAT_TIMEOUT' | 'TOO_MANY_CONNECTIONS'

/**
 * What a connection counts (the app's GatewayMetrics). Frame counts are plain numbers
 * bumped on the per-frame path (no label lookup, no allocation) and turned into
 * counters at scrape time.
 */
export interface ConnectionMetrics {
  readonly messagesIn: Record<ReceivedFrameKind, number>
  readonly messagesOut: Record<SentFrameKind, number>
  serverClose (reason: ServerCloseReason): void
}
