import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Engine } from '../engine/engine.js'

declare module 'fastify' {
  interface FastifyInstance {
    engine: Engine
  }
}

/**
 * Shares the engine with every route. Registering never waits for Redis (unlike
 * @fastify/redis, whose registration blocks until Redis is ready and so keeps the
 * gateway from listening while Redis is down; see docs/architecture.md): the app
 * listens at once and readiness follows the engine.
 */
async function enginePlugin (app: FastifyInstance, options: { engine: Engine }): Promise<void> {
  app.decorate('engine', options.engine)
  app.addHook('onClose', async () => { await options.engine.close() })
}

export default fp(enginePlugin, { name: 'rtgw-engine', fastify: '5.x' })
