import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Engine } from '../engine/engine.js'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

/**
 * Shares the engine with every route, and closes it with the app (buildApp created
 * it, so the app owns it). Registering never waits for Redis (unlike @fastify/redis,
 * whose registration blocks until Redis is ready and so keeps the gateway from
 * listening while Redis is down; see docs/architecture.md): the app listens at once
 * and readiness follows the engine.
 */
async function enginePlugin (app: FastifyInstance, options: { engine: Engine, settle?: () => Promise<void> }): Promise<void> {
  app.decorate('engine', options.engine)
  // `settle`: writes still in flight (lifecycle events of the drain's closes) reach the engine first.
  app.addHook('onClose', async () => {
    await options.settle?.()
    await options.engine.close()
  })
  if (options.engine.kind === 'memory') {
    app.log.warn({ event: 'engine.memory' }, 'no Redis configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): using the embedded memory engine (one instance only, nothing shared)')
  }
}

export default fp(enginePlugin, { name: 'rtgw-engine', fastify: '5.x' })
