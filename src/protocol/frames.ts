/**
 * WebSocket frames (SPEC §4–§5). Client frames are validated with these schemas;
 * server frames are typed by them. Channels, send and the rest of §5 join this
 * file with the relay.
 */
import { Type, type Static } from 'typebox'

/** Client request id: echoed in replies so clients can match them. */
const RequestId = Type.Union([Type.String({ maxLength: 128 }), Type.Number()])

export const PingFrame = Type.Object({
  type: Type.Literal('ping'),
  id: Type.Optional(RequestId)
})
export type PingFrame = Static<typeof PingFrame>

/** Every frame a client may send, keyed by `type`. */
export const clientFrameSchemas = {
  ping: PingFrame
} as const
export type ClientFrameType = keyof typeof clientFrameSchemas
export type ClientFrame = PingFrame

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

export type ServerFrame = SessionEstablishedFrame | PongFrame | ErrorFrame
