import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { CounterHit } from '../engine/engine.js'
import type { TicketQuota } from '../tickets/ticket-service.js'
import { GatewayError } from '../errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The limits of POST /ws-ticket (SPEC §13), built once by plugins/ticket-limits.ts. */
    ticketLimits: TicketLimits
  }
}

/** Each rejects with RATE_LIMITED (+ Retry-After, the window's remaining seconds) past its limit. */
export interface TicketLimits {
  /** Counts a failed authentication against the request's client IP, in this process. */
  readonly authFailure: (request: FastifyRequest) => Promise<void>
  /** A ticket request counted against its user on every instance, in the ticket's own store command (TicketService.issue). */
  readonly userQuota: (sub: string) => TicketQuota
}

export interface TicketLimitsOptions {
  readonly perUser: number
  readonly authFailuresPerIp: number
  readonly windowMs: number
}

function rateLimited (ttlSeconds: number): GatewayError {
  return new GatewayError('RATE_LIMITED', { retryAfterSeconds: Math.max(1, ttlSeconds) })
}

/**
 * In process, on @fastify/rate-limit: it guards this instance against guessing and
 * costs no Redis round trip. Registered in a scope of its own so the plugin's
 * decorators stay out of the app. Keyed by `request.ip`, which TRUST_PROXY decides.
 */
async function authFailureLimit (app: FastifyInstance, max: number, windowMs: number): Promise<TicketLimits['authFailure']> {
  let check: ReturnType<FastifyInstance['createRateLimit']> | undefined
  await app.register(async (scope) => {
    await scope.register(rateLimit, { global: false })
    check = scope.createRateLimit({ max, timeWindow: windowMs, keyGenerator: (request) => `ip:${request.ip}` })
  })
  const limit = check
  if (limit === undefined) throw new Error('rate limiter was not created')
  return async (request) => {
    const result = await limit(request)
    if (!result.isAllowed && result.isExceeded) throw rateLimited(result.ttlInSeconds)
  }
}

/**
 * Shared through the engine (`<prefix>ratelimit:user:<sub>` in Redis) so the limit
 * holds across instances, and counted in the command that stores the ticket: one Redis
 * round trip per ticket (issue 14). Not on @fastify/rate-limit: its key comes from the
 * request, while this one is the verified token's subject. An engine failure fails
 * the store too, which answers its own 503.
 */
function userQuota (max: number, windowMs: number): TicketLimits['userQuota'] {
  const admit = (hit: CounterHit): void => {
    if (hit.count > max) throw rateLimited(Math.ceil(hit.ttlMs / 1000))
  }
  return (sub) => ({ counterKey: `user:${sub}`, windowMs, admit })
}

/**
 * Builds the ticket route's limiters once (SPEC §13). Behind an ingress or a
 * corporate NAT thousands of users share one IP, so the IP only ever counts failed
 * authentications; a valid token is limited per user.
 */
async function ticketLimitsPlugin (app: FastifyInstance, options: TicketLimitsOptions): Promise<void> {
  app.decorate('ticketLimits', {
    authFailure: await authFailureLimit(app, options.authFailuresPerIp, options.windowMs),
    userQuota: userQuota(options.perUser, options.windowMs)
  })
}

export default fp(ticketLimitsPlugin, { name: 'rtgw-ticket-limits', fastify: '5.x' })
