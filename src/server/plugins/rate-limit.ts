import rateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { GatewayError } from '../errors.js'

export interface LimiterOptions {
  readonly max: number
  readonly windowMs: number
  readonly key: (request: FastifyRequest) => string
  /** Shared counters across instances (one key per counter: Cluster-safe); omit for a per-process limit. */
  readonly redis?: { readonly client: Redis | Cluster, readonly nameSpace: string }
}

/** Counts one request against the limit; rejects with RATE_LIMITED (+ Retry-After) past it. */
export type Limiter = (request: FastifyRequest) => Promise<void>

/**
 * Builds a limiter on @fastify/rate-limit. Each limiter registers the plugin in a
 * scope of its own, because the plugin keeps one store (Redis or in-process) per
 * registration and the gateway wants both kinds. A Redis failure lets the request
 * through (`skipOnError`): the route then answers its own 503.
 */
export async function createLimiter (app: FastifyInstance, options: LimiterOptions): Promise<Limiter> {
  let check: ReturnType<FastifyInstance['createRateLimit']> | undefined
  await app.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      skipOnError: true,
      ...(options.redis === undefined ? {} : { redis: options.redis.client, nameSpace: options.redis.nameSpace })
    })
    check = scope.createRateLimit({ max: options.max, timeWindow: options.windowMs, keyGenerator: options.key })
  })
  const limit = check
  if (limit === undefined) throw new Error('rate limiter was not created')
  return async (request) => {
    const result = await limit(request)
    if (!result.isAllowed && result.isExceeded) {
      throw new GatewayError('RATE_LIMITED', { retryAfterSeconds: Math.max(1, result.ttlInSeconds) })
    }
  }
}
