import Fastify, { type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { GatewayMetrics } from '../metrics/gateway-metrics.js'
import { errorBody } from '../errors.js'
import { requestIdOf } from '../logging.js'
import metricsRoute from '../routes/metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The internal server of METRICS_PORT; null when /metrics is on the main port. */
    metricsServer: FastifyInstance | null
  }
}

export interface MetricsPluginOptions {
  readonly metrics: GatewayMetrics
  /** METRICS_PORT: serve /metrics there instead of on the main port. */
  readonly port?: number
  readonly host: string
}

/**
 * Metrics into Fastify: the HTTP request histogram for every response, and
 * GET /metrics — on the main port, or, with METRICS_PORT, only on a small server of
 * its own that starts when the app is ready and closes with it, so the public
 * ingress never exposes it.
 */
async function metricsPlugin (app: FastifyInstance, options: MetricsPluginOptions): Promise<void> {
  const { metrics } = options

  // The route pattern, never the URL: bounded cardinality, and URLs carry tickets.
  app.addHook('onResponse', (request, reply, done) => {
    metrics.observeHttp(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime)
    done()
  })

  if (options.port === undefined) {
    app.decorate('metricsServer', null)
    await app.register(metricsRoute, { metrics })
    return
  }

  const server = Fastify({
    loggerInstance: app.log.child({ component: 'metrics' }),
    disableRequestLogging: true,
    genReqId: requestIdOf,
    requestIdHeader: false,
    forceCloseConnections: true
  })
  await server.register(metricsRoute, { metrics })
  // Like the main port's: no URL in the body or the log.
  server.setNotFoundHandler((request, reply) => reply.code(404).send(errorBody('NOT_FOUND', request.id)))
  app.decorate('metricsServer', server)

  const port = options.port
  app.addHook('onReady', async () => {
    await server.listen({ port, host: options.host })
    const address = server.server.address()
    app.log.info({ event: 'metrics.listening', port: typeof address === 'object' && address !== null ? address.port : port }, 'metrics served on their own port')
  })
  app.addHook('onClose', async () => { await server.close() })
}

export default fp(metricsPlugin, { name: 'rtgw-metrics', fastify: '5.x' })
