import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { jitteredRetryAfter } from '../errors.js'
import { readinessAnswer, type ReadinessInputs } from '../probes/readiness.js'
import { LivenessResponse, ReadinessResponse } from '../../protocol/http.js'

export interface HealthRouteOptions {
  /** The checks `/readyz` decides from (app.ts; the probe thread reads the same). */
  readonly readiness: () => ReadinessInputs
}

/**
 * Kubernetes probes (SPEC §3). Liveness checks nothing external so a Redis outage
 * never restarts healthy pods; readiness gates traffic on Redis, on pub/sub delivery
 * (SPEC §14) and on drain, and names what fails, why and since when.
 */
export default async function healthRoutes (app: FastifyInstance, options: HealthRouteOptions): Promise<void> {
  const typed = app.withTypeProvider<TypeBoxTypeProvider>()

  typed.get('/livez', {
    config: { accessLog: 'debug' },
    schema: {
      tags: ['operations'],
      summary: 'Liveness: 200 while the process can answer; checks no dependency',
      response: { 200: LivenessResponse }
    }
  }, async () => ({ status: 'ok' as const }))

  typed.get('/readyz', {
    config: { accessLog: 'debug' },
    schema: {
      tags: ['operations'],
      summary: 'Readiness: 200 only when Redis is connected, pub/sub delivers and the gateway is not draining',
      response: {
        200: ReadinessResponse,
        503: Type.Object(ReadinessResponse.properties, { description: 'Not ready: `failing` names the failing checks; `Retry-After: 1`' })
      }
    }
  }, async (_request, reply) => {
    const answer = readinessAnswer(options.readiness())
    if (answer.statusCode === 200) return answer.body
    reply.header('retry-after', String(jitteredRetryAfter(1)))
    return await reply.code(503).send(answer.body)
  })
}
