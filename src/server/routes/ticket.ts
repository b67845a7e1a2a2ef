import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, ErrorBody, TicketResponse } from '../../protocol/http.js'
import { EngineUnavailableError } from '../engine/engine.js'
import { GatewayError } from '../errors.js'
import { authenticateUser, userTokenOf } from './authenticate.js'

export interface TicketRouteOptions {
  readonly rateLimit: { readonly perUser: number, readonly perIp: number, readonly windowMs: number }
}

/** POST /ws-ticket (SPEC §3): a bearer JWT buys one single-use WebSocket ticket. */
export default async function ticketRoute (app: FastifyInstance, options: TicketRouteOptions): Promise<void> {
  const { perUser, perIp, windowMs } = options.rateLimit
  app.decorateRequest('token', null)

  // Two limits: per IP first, so unauthenticated noise costs no JWT verification;
  // per user after authentication, so one user cannot mint tickets without bound.
  const limitByIp = app.createRateLimit({ max: perIp, timeWindow: windowMs, keyGenerator: (request) => `ip:${request.ip}` })
  const limitByUser = app.createRateLimit({ max: perUser, timeWindow: windowMs, keyGenerator: (request) => `user:${userTokenOf(request).sub}` })
  const enforce = async (limit: typeof limitByIp, request: FastifyRequest): Promise<void> => {
    const result = await limit(request)
    if (!result.isAllowed && result.isExceeded) {
      throw new GatewayError('RATE_LIMITED', { retryAfterSeconds: Math.max(1, result.ttlInSeconds) })
    }
  }

  app.withTypeProvider<TypeBoxTypeProvider>().post('/ws-ticket', {
    schema: {
      headers: BearerHeaders,
      response: { 200: TicketResponse, 401: ErrorBody, 429: ErrorBody, 503: ErrorBody }
    },
    onRequest: async (request) => { await enforce(limitByIp, request) },
    preHandler: [authenticateUser, async (request) => { await enforce(limitByUser, request) }]
  }, async (request) => {
    const token = userTokenOf(request)
    try {
      return await app.tickets.issue({ sub: token.sub, sessionId: token.sessionId })
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw new GatewayError('WS_TICKET_REDIS_NOT_READY', { retryAfterSeconds: 1 })
      throw err
    }
  })
}
