import type { FastifyInstance } from 'fastify'

/** GET /metrics (SPEC §3): Prometheus text exposition of this instance's registry. */
export default async function metricsRoute (app: FastifyInstance): Promise<void> {
  app.get('/metrics', { config: { accessLog: 'debug' } }, async (_request, reply) => {
    reply.header('content-type', app.metrics.registry.contentType)
    return await app.metrics.registry.metrics()
  })
}
