/**
 * TypeBox schemas of the HTTP API (SPEC §3). They are the single source for
 * Fastify's validation and serialization, the `Static` types used by routes and
 * the client SDK, and (later) the OpenAPI document.
 */
import { Type, type Static } from 'typebox'

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'HTTP status name in upper snake case' }),
  code: Type.String({ description: 'Stable machine code (see protocol/codes.ts)' }),
  message: Type.String(),
  traceId: Type.String({ description: 'The request id, also sent as x-request-id' })
}, { $id: 'ErrorBody' })
export type ErrorBody = Static<typeof ErrorBody>

export const TicketResponse = Type.Object({
  ticket: Type.String({ description: 'One-time credential for the WebSocket upgrade' }),
  expiresAt: Type.String({ format: 'date-time' }),
  ttlSeconds: Type.Integer({ minimum: 1 })
})
export type TicketResponse = Static<typeof TicketResponse>

export const ReadinessChecks = Type.Object({
  engine: Type.Union([Type.Literal('ok'), Type.Literal('fail')]),
  draining: Type.Union([Type.Literal('ok'), Type.Literal('fail')])
})

export const ReadinessResponse = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('not_ready')]),
  checks: ReadinessChecks,
  failing: Type.Optional(Type.Array(Type.String()))
})
export type ReadinessResponse = Static<typeof ReadinessResponse>

export const LivenessResponse = Type.Object({
  status: Type.Literal('ok')
})

export const BearerHeaders = Type.Object({
  authorization: Type.Optional(Type.String())
})

const ChannelName = Type.String({ pattern: '^[A-Za-z0-9:_.@-]{1,200}$' })

export const PublishMessage = Type.Object({
  channel: ChannelName,
  data: Type.Unknown({ description: 'Any JSON value, delivered verbatim' }),
  idempotencyKey: Type.Optional(Type.String({ minLength: 1, maxLength: 200 }))
}, { additionalProperties: false })
export type PublishMessage = Static<typeof PublishMessage>

export const PublishBatch = Type.Object({
  messages: Type.Array(PublishMessage, { minItems: 1, maxItems: 100 })
}, { additionalProperties: false })
export type PublishBatch = Static<typeof PublishBatch>

export const PublishBody = Type.Union([PublishMessage, PublishBatch])
export type PublishBody = Static<typeof PublishBody>

export const PublishResult = Type.Object({
  channel: Type.String(),
  offset: Type.String()
})

export const PublishResponse = Type.Union([
  PublishResult,
  Type.Object({ results: Type.Array(PublishResult) })
])

/** Exactly one of userId or sessionId (a union would let Fastify's removeAdditional strip the other). */
export const DisconnectBody = Type.Object({
  userId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  sessionId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 }))
}, { minProperties: 1, maxProperties: 1 })
export type DisconnectBody = Static<typeof DisconnectBody>

export const DisconnectResponse = Type.Object({ requested: Type.Literal(true) })

export const PollQuery = Type.Object({
  channel: ChannelName,
  since: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}:[0-9]{1,15}$' })),
  timeoutMs: Type.Integer({ minimum: 0, maximum: 30000, default: 25000 })
})
export type PollQuery = Static<typeof PollQuery>

export const PollResponse = Type.Object({
  messages: Type.Array(Type.Object({
    type: Type.Literal('message'),
    channel: Type.String(),
    offset: Type.String(),
    data: Type.Unknown()
  })),
  /** Poll again with this as `since`. */
  offset: Type.String(),
  /** False: `since` predates the retained history (messages were missed). */
  recovered: Type.Boolean()
})
