/**
 * TypeBox schemas of the HTTP API (SPEC §3). They are the single source for
 * Fastify's validation and serialization, the `Static` types used by routes and
 * the client SDK, and the OpenAPI document.
 */
import { Type, type Static, type TObject } from 'typebox'
import { codes, type Code } from './codes.js'
import { OFFSET_PATTERN_SOURCE } from './offsets.js'

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'HTTP status name in upper snake case' }),
  code: Type.String({ description: 'Stable machine code (see protocol/codes.ts)' }),
  message: Type.String(),
  traceId: Type.String({ description: 'The request id, also sent as x-request-id' })
}, { $id: 'ErrorBody' })
export type ErrorBody = Static<typeof ErrorBody>

/** HTTP statuses whose answers carry `Retry-After` (seconds). */
const RETRY_AFTER_STATUSES = new Set([429, 503])

/**
 * A route's error responses, one per status: the ErrorBody with `code` narrowed to
 * the codes this route answers with that status, each listed with its meaning. The
 * same schemas serialize the errors and describe them in the OpenAPI document.
 */
export function errorResponses (...list: readonly Code[]): Record<number, TObject> {
  const byStatus = new Map<number, Code[]>()
  for (const code of list) {
    const status: number | undefined = (codes[code] as { status?: number }).status
    if (status === undefined) throw new TypeError(`${code} is not an HTTP error`)
    byStatus.set(status, [...(byStatus.get(status) ?? []), code])
  }
  const responses: Record<number, TObject> = {}
  for (const [status, statusCodes] of byStatus) {
    responses[status] = Type.Object({
      ...ErrorBody.properties,
      code: Type.Unsafe<Code>({ type: 'string', enum: statusCodes, description: 'Stable machine code (see protocol/codes.ts)' })
    }, {
      description: statusCodes.map((code) => `\`${code}\`: ${codes[code].message}.`).join(' '),
      ...(RETRY_AFTER_STATUSES.has(status) ? { headers: { 'retry-after': { type: 'string', description: 'Seconds to wait before retrying' } } } : {})
    })
  }
  return responses
}

/**
 * Errors any route may answer besides its own (OpenAPI `default`): a malformed request
 * or an unsupported content type (400/415 BAD_REQUEST), a body over the route's limit
 * (413 PAYLOAD_TOO_LARGE), a bug (500 INTERNAL_ERROR).
 */
export const OtherErrors = Type.Object({
  ...ErrorBody.properties,
  code: Type.Unsafe<Code>({ type: 'string', enum: ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'INTERNAL_ERROR'] })
}, { description: 'Any other error: `BAD_REQUEST` (400, or 415 for an unsupported content type): the request is malformed. `PAYLOAD_TOO_LARGE` (413): the body is over the limit. `INTERNAL_ERROR` (500): a bug; retry.' })

export const TicketResponse = Type.Object({
  ticket: Type.String({ description: 'One-time credential for the WebSocket upgrade' }),
  expiresAt: Type.String({ format: 'date-time' }),
  ttlSeconds: Type.Integer({ minimum: 1 })
})
export type TicketResponse = Static<typeof TicketResponse>

export const ReadinessCheck = Type.Object({
  status: Type.Union([Type.Literal('ok'), Type.Literal('fail')]),
  reason: Type.Optional(Type.String({ description: 'Why it fails, short: `ECONNREFUSED`, `probe missed ×2`, `SIGTERM`' })),
  since: Type.String({ format: 'date-time', description: 'When the check entered its current state' })
})

export type ReadinessCheck = Static<typeof ReadinessCheck>

/** SPEC §3: `redis`, `pubsub`, `draining` on the Redis engine; `engine`, `draining` on the embedded one. */
export const ReadinessChecks = Type.Object({
  redis: Type.Optional(ReadinessCheck),
  pubsub: Type.Optional(ReadinessCheck),
  engine: Type.Optional(ReadinessCheck),
  draining: ReadinessCheck
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

const DisconnectFields = Type.Object({
  userId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Every session of this user' })),
  sessionId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'This one session' })),
  revokeSeconds: Type.Optional(Type.Integer({
    minimum: 1,
    maximum: 86400,
    description: 'Also ban the target this long: POST /ws-ticket answers 401 SESSION_REVOKED and its tickets are refused at the upgrade (4403)'
  }))
}, { additionalProperties: false })

/**
 * Exactly one of userId or sessionId, and nothing unknown (SPEC §3: a misspelt field is
 * a 400, never a silent no-op). The field check comes first in an `allOf`: ajv stops at
 * the first failing keyword, and an `oneOf` beside it would be checked first and hide
 * the unknown field behind "must have required property".
 */
export const DisconnectBody = Type.Intersect([
  DisconnectFields,
  Type.Unsafe<{ userId: string } | { sessionId: string }>({
    oneOf: [{ type: 'object', required: ['userId'] }, { type: 'object', required: ['sessionId'] }]
  })
], { description: 'Exactly one of `userId` or `sessionId`, optionally `revokeSeconds`' })
export type DisconnectBody = Static<typeof DisconnectBody>

export const DisconnectResponse = Type.Object({ requested: Type.Literal(true) })

/**
 * Unknown parameters are a 400 like unknown body fields: a misspelt `since` would
 * otherwise answer from the head and silently skip messages. Names starting with `_`
 * are let through and ignored: cache-busters such as jQuery's `_=<timestamp>`.
 */
export const PollQuery = Type.Object({
  channel: ChannelName,
  since: Type.Optional(Type.String({ pattern: OFFSET_PATTERN_SOURCE })),
  timeoutMs: Type.Integer({ minimum: 0, maximum: 30000, default: 25000 })
}, { additionalProperties: false, patternProperties: { '^_': {} } })
export type PollQuery = Static<typeof PollQuery>

/** A §5 message frame as HTTP answers carry it (long-poll, history). */
const MessageFrameBody = Type.Object({
  type: Type.Literal('message'),
  channel: Type.String(),
  offset: Type.String(),
  data: Type.Unknown(),
  from: Type.Optional(Type.String({ description: 'The publishing user of a client publish (SPEC §9); absent for backend publishes' }))
})

export const PollResponse = Type.Object({
  messages: Type.Array(MessageFrameBody),
  /** Poll again with this as `since`. */
  offset: Type.String(),
  /** False: `since` predates the retained history (messages were missed). */
  recovered: Type.Boolean()
})

/**
 * GET /v1/history (SPEC §10). Unknown parameters are a 400, as for PollQuery: a
 * misspelt `since` would otherwise answer the latest messages instead of a resume.
 */
export const HistoryQuery = Type.Object({
  channel: ChannelName,
  since: Type.Optional(Type.String({ pattern: OFFSET_PATTERN_SOURCE, description: 'An offset: the messages after it. Omitted: the latest `limit` messages' })),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'At most this many messages' })
}, { additionalProperties: false, patternProperties: { '^_': {} } })
export type HistoryQuery = Static<typeof HistoryQuery>

export const HistoryResponse = Type.Object({
  channel: Type.String(),
  /** §5 message frames, oldest first. */
  messages: Type.Array(MessageFrameBody),
  offset: Type.String({ description: 'The last message\'s offset (or the position when none): pass it as `since` for the next page' }),
  recovered: Type.Boolean({ description: 'False: `since` is from another epoch, older than the retained history or ahead of it; `offset` is then the head' })
})

/** GET /v1/presence (SPEC §11): exactly one of `channel` and `userId`; unknown parameters are a 400. */
export const PresenceQuery = Type.Object({
  channel: Type.Optional(ChannelName),
  userId: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'A user id (the JWT `sub`)' }))
}, { additionalProperties: false, patternProperties: { '^_': {} } })
export type PresenceQuery = Static<typeof PresenceQuery>

const PresenceUser = Type.Object({
  userId: Type.String(),
  connections: Type.Integer({ minimum: 1, description: 'Its connections in the channel, on every instance' }),
  info: Type.Optional(Type.Unknown({ description: 'The JWT\'s `info` claim' }))
})

export const ChannelPresenceResponse = Type.Object({
  channel: Type.String(),
  users: Type.Array(PresenceUser, { maxItems: 1000 }),
  totalUsers: Type.Integer({ minimum: 0 }),
  totalConnections: Type.Integer({ minimum: 0 }),
  truncated: Type.Boolean({ description: 'True when more than 1000 users are present: `users` lists 1000 of them' })
})

export const UserPresenceResponse = Type.Object({
  userId: Type.String(),
  online: Type.Boolean(),
  connections: Type.Array(Type.Object({
    connectionId: Type.String(),
    sessionId: Type.String(),
    connectedAt: Type.String({ format: 'date-time' })
  }))
})

export const PresenceResponse = Type.Union([ChannelPresenceResponse, UserPresenceResponse])
