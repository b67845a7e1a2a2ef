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
