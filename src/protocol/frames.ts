/**
 * WebSocket frames (SPEC §4–§5). Client frames are validated with these schemas;
 * server frames are typed by them, as one union tagged by `type`.
 */
import { Type, type Static } from 'typebox'
import { OFFSET_PATTERN_SOURCE } from './offsets.js'

/** Client request id: echoed in replies so clients can match them. */
const RequestId = Type.Union([Type.String({ maxLength: 128 }), Type.Number()])

/** Channel names: safe inside Redis hash tags and log lines. */
export const ChannelName = Type.String({ pattern: '^[A-Za-z0-9:_.@-]{1,200}$' })

/** `<epoch>:<seq>` as issued by the gateway; opaque to clients. */
export const Offset = Type.String({ pattern: OFFSET_PATTERN_SOURCE })

export const PingFrame = Type.Object({
  type: Type.Literal('ping'),
  id: Type.Optional(RequestId)
})
export type PingFrame = Static<typeof PingFrame>

export const SubscribeFrame = Type.Object({
  type: Type.Literal('subscribe'),
  channel: ChannelName,
  since: Type.Optional(Offset),
  id: Type.Optional(RequestId),
  /** A subscription token (SPEC §9): a JWT for this channel, signed by the app's backend. */
  token: Type.Optional(Type.String({ minLength: 1, maxLength: 8192 }))
})
export type SubscribeFrame = Static<typeof SubscribeFrame>

export const UnsubscribeFrame = Type.Object({
  type: Type.Literal('unsubscribe'),
  channel: ChannelName,
  id: Type.Optional(RequestId)
})
export type UnsubscribeFrame = Static<typeof UnsubscribeFrame>

/** Upstream to backends (SPEC §5): `id` is required, it is what makes a retry a duplicate. */
export const SendFrame = Type.Object({
  type: Type.Literal('send'),
  id: Type.Union([Type.String({ minLength: 1, maxLength: 128 }), Type.Number()]),
  data: Type.Unknown()
})
export type SendFrame = Static<typeof SendFrame>

/**
 * Client publish (SPEC §9). No `from` here: the gateway sets it from the connection's
 * user, and a `from` the client adds to the frame is not read.
 */
export const PublishFrame = Type.Object({
  type: Type.Literal('publish'),
  channel: ChannelName,
  data: Type.Unknown(),
  id: Type.Optional(RequestId),
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 }))
})
export type PublishFrame = Static<typeof PublishFrame>

/** SPEC §11: who is in a presence channel (allowed to anyone who may subscribe to it). */
export const PresenceRequestFrame = Type.Object({
  type: Type.Literal('presence'),
  channel: ChannelName,
  id: Type.Optional(RequestId)
})
export type PresenceRequestFrame = Static<typeof PresenceRequestFrame>

/** Every frame a client may send, keyed by `type`. */
export const clientFrameSchemas = {
  ping: PingFrame,
  subscribe: SubscribeFrame,
  unsubscribe: UnsubscribeFrame,
  send: SendFrame,
  publish: PublishFrame,
  presence: PresenceRequestFrame
} as const
export type ClientFrameType = keyof typeof clientFrameSchemas
export type ClientFrame = PingFrame | SubscribeFrame | UnsubscribeFrame | SendFrame | PublishFrame | PresenceRequestFrame

export type { SessionEstablishedFrame, PongFrame, ErrorFrame, SubscribedFrame, UnsubscribedFrame, MessageFrame, AckFrame, ServerFrame, PublishedFrame, JoinFrame, LeaveFrame, PresenceFrame, PresenceUser } from './server-frames.js'
