import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, TicketResponse, errorResponses } from '../../protocol/http.js'
import { GatewayError } from '../errors.js'
import { authenticateUser, userTokenOf } from './authenticate.js'
import { presenceInfoOf } from '../channels/channel-presence.js'

/**
 * POST /ws-ticket (SPEC §3): a bearer JWT buys one single-use WebSocket ticket.
 * Its limits (SPEC §13) are `app.ticketLimits` (plugins/ticket-limits.ts): failed
 * authentications per IP, tickets per user.
 */
export default async function ticketRoute (app: FastifyInstance): Promise<void> {
  const limits = app.ticketLimits
  app.decorateRequest('token', null)

  /** A refused token counts against its IP; past the limit the refusal becomes a 429. */
  async function authenticate (request: FastifyRequest): Promise<void> {
    try {
      await authenticateUser(request)
    } catch (err) {
      if (err instanceof GatewayError && err.statusCode === 401) await limits.authFailure(request)
      throw err
    }
  }

  app.withTypeProvider<TypeBoxTypeProvider>().post('/ws-ticket', {
    // SPEC §3: this route's 503 has a text of its own (plugins/error-handler.ts).
    config: { engineUnavailableCode: 'WS_TICKET_REDIS_NOT_READY' },
    schema: {
      tags: ['client'],
      summary: 'Exchange a user JWT for a one-time WebSocket ticket',
      description: 'The ticket is valid once, for TICKET_TTL_SECONDS, bound to the token\'s sub and session. Pass it as `GET /ws?ticket=`. Tickets are limited per user; only failed authentications count against a client IP.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      response: {
        200: TicketResponse,
        ...errorResponses('MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'MISSING_SESSION', 'INFO_TOO_LARGE', 'SESSION_REVOKED', 'RATE_LIMITED', 'WS_TICKET_REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: authenticate
  }, async (request, reply) => {
    const token = userTokenOf(request)
    // A ticket is a credential: no cache, proxy or browser may keep it.
    reply.header('cache-control', 'no-store')
    // The user's limit is counted in the same command that stores the ticket: one round
    // trip for both. A refused request's ticket is never handed out and simply expires.
    const info = presenceInfoOf(token.claims.info)
    return await app.tickets.issue({ sub: token.sub, sessionId: token.sessionId, channels: token.channels, publish: token.publish, ...(info === undefined ? {} : { info }) }, limits.userQuota(token.sub))
  })
}
