import type { FastifyInstance } from 'fastify'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'

export interface MetricsRouteOptions {
  readonly metrics: GatewayMetrics
}

/**
 * GET /metrics (SPEC §3): Prometheus text exposition of this instance's registry.
 * Served on the main port, or on METRICS_PORT by plugins/metrics.ts.
 */
export default async function metricsRoute (app: FastifyInstance, options: MetricsRouteOptions): Promise<void> {
  const { registry } = options.metrics
  app.get('/metrics', {
    config: { accessLog: 'debug' },
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics of this instance',
      description: 'Prometheus text exposition format. Not served here when METRICS_PORT is set (it moves to that port). Every metric is described in docs/operations.md.',
      response: {
        200: {
          description: 'Prometheus text exposition',
          content: { 'text/plain': { schema: { type: 'string' } } }
        }
      }
    }
  }, async (_request, reply) => {
    reply.header('content-type', registry.contentType)
    return await registry.metrics()
  })
}
