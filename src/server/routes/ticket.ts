import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, TicketResponse, errorResponses } from '../../protocol/http.js'
import { EngineUnavailableError } from '../engine/engine.js'
import { RedisEngine } from '../engine/redis-engine.js'
import { GatewayError } from '../errors.js'
import { createLimiter } from '../plugins/rate-limit.js'
import { authenticateUser, userTokenOf } from './authenticate.js'

export interface TicketRouteOptions {
  readonly rateLimit: { readonly perUser: number, readonly authFailuresPerIp: number, readonly windowMs: number }
  readonly keyPrefix: string
}

/**
 * POST /ws-ticket (SPEC §3): a bearer JWT buys one single-use WebSocket ticket.
 *
 * Limits (SPEC §13): behind an ingress or a corporate NAT thousands of users share
 * one IP, so the IP only ever counts failed authentications, and only those are
 * refused for it. A valid token is always verified and served, within its user's
 * own limit.
 */
export default async function ticketRoute (app: FastifyInstance, options: TicketRouteOptions): Promise<void> {
  const { perUser, authFailuresPerIp, windowMs } = options.rateLimit
  app.decorateRequest('token', null)

  // In process: it guards this instance against guessing, and costs no Redis round trip.
  const countAuthFailure = await createLimiter(app, { max: authFailuresPerIp, windowMs, key: (request) => `ip:${request.ip}` })
  // Shared through Redis so the limit holds across instances.
  const limitByUser = await createLimiter(app, {
    max: perUser,
    windowMs,
    key: (request) => `user:${userTokenOf(request).sub}`,
    ...(app.engine instanceof RedisEngine ? { redis: { client: app.engine.client, nameSpace: `${options.keyPrefix}ratelimit:` } } : {})
  })

  /** A refused token counts against its IP; past the limit the refusal becomes a 429. */
  async function authenticate (request: FastifyRequest): Promise<void> {
    try {
      await authenticateUser(request)
    } catch (err) {
      if (err instanceof GatewayError && err.statusCode === 401) await countAuthFailure(request)
      throw err
    }
  }

  app.withTypeProvider<TypeBoxTypeProvider>().post('/ws-ticket', {
    schema: {
      tags: ['client'],
      summary: 'Exchange a user JWT for a one-time WebSocket ticket',
      description: 'The ticket is valid once, for TICKET_TTL_SECONDS, bound to the token\'s sub and session. Pass it as `GET /ws?ticket=`. Tickets are limited per user; only failed authentications count against a client IP.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      response: {
        200: TicketResponse,
        ...errorResponses('MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'MISSING_SESSION', 'SESSION_REVOKED', 'RATE_LIMITED', 'WS_TICKET_REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: authenticate
  }, async (request, reply) => {
    const token = userTokenOf(request)
    // A ticket is a credential: no cache, proxy or browser may keep it.
    reply.header('cache-control', 'no-store')
    try {
      // The user's limit is checked while the ticket is stored: one Redis round trip
      // for both. A refused request's ticket is never handed out and simply expires.
      return await app.tickets.issue({ sub: token.sub, sessionId: token.sessionId, channels: token.channels }, limitByUser(request))
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw new GatewayError('WS_TICKET_REDIS_NOT_READY', { retryAfterSeconds: 1 })
      throw err
    }
  })
}
