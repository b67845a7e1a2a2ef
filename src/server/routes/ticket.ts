import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, TicketResponse, errorResponses } from '../../protocol/http.js'
import { EngineUnavailableError } from '../engine/engine.js'
import { RedisEngine } from '../engine/redis-engine.js'
import { GatewayError } from '../errors.js'
import { createLimiter } from '../plugins/rate-limit.js'
import { authenticateUser, userTokenOf } from './authenticate.js'

export interface TicketRouteOptions {
  readonly rateLimit: { readonly perUser: number, readonly perIp: number, readonly windowMs: number }
  readonly keyPrefix: string
}

/** POST /ws-ticket (SPEC §3): a bearer JWT buys one single-use WebSocket ticket. */
export default async function ticketRoute (app: FastifyInstance, options: TicketRouteOptions): Promise<void> {
  const { perUser, perIp, windowMs } = options.rateLimit
  app.decorateRequest('token', null)

  // Per IP first, in process: unauthenticated noise costs no JWT verification and no
  // Redis round trip, and it is each instance's own CPU that it protects.
  const limitByIp = await createLimiter(app, { max: perIp, windowMs, key: (request) => `ip:${request.ip}` })
  // Per user after authentication, shared through Redis so the limit holds across instances.
  const limitByUser = await createLimiter(app, {
    max: perUser,
    windowMs,
    key: (request) => `user:${userTokenOf(request).sub}`,
    ...(app.engine instanceof RedisEngine ? { redis: { client: app.engine.client, nameSpace: `${options.keyPrefix}ratelimit:` } } : {})
  })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/ws-ticket', {
    schema: {
      tags: ['client'],
      summary: 'Exchange a user JWT for a one-time WebSocket ticket',
      description: 'The ticket is valid once, for TICKET_TTL_SECONDS, bound to the token\'s sub and session. Pass it as `GET /ws?ticket=`.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      response: {
        200: TicketResponse,
        ...errorResponses('MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'MISSING_SESSION', 'RATE_LIMITED', 'WS_TICKET_REDIS_NOT_READY', 'AUTH_UNAVAILABLE'),
        default: OtherErrors
      }
    },
    onRequest: limitByIp,
    preHandler: authenticateUser
  }, async (request) => {
    const token = userTokenOf(request)
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
