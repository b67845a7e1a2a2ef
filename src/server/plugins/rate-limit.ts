import fp from 'fastify-plugin'
import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance } from 'fastify'
import { RedisEngine } from '../engine/redis-engine.js'
import { GatewayError } from '../errors.js'

/**
 * @fastify/rate-limit, Redis-backed when the engine is Redis so limits hold across
 * instances, in memory otherwise. Nothing is limited globally: routes build their
 * own limiters with `app.rateLimit({...})`. A Redis failure lets requests through
 * (`skipOnError`): the route then answers its own 503 instead of a rate-limit error.
 */
async function rateLimitPlugin (app: FastifyInstance, options: { keyPrefix: string }): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(app.engine instanceof RedisEngine ? { redis: app.engine.client, nameSpace: `${options.keyPrefix}ratelimit:` } : {}),
    errorResponseBuilder: (_request, context) => new GatewayError('RATE_LIMITED', {
      message: `Rate limit exceeded, retry in ${context.after}`,
      retryAfterSeconds: Math.max(1, Math.ceil(context.ttl / 1000))
    })
  })
}

export default fp(rateLimitPlugin, { name: 'rtgw-rate-limit', fastify: '5.x', dependencies: ['rtgw-engine'] })
