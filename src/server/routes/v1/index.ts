import type { FastifyInstance } from 'fastify'
import { ENGINE_RETRY_AFTER_SECONDS, GatewayError } from '../../errors.js'
import publishRoute from './publish.js'
import disconnectRoute from './disconnect.js'
import pollRoute from './poll.js'
import historyRoute from './history.js'
import presenceRoute from './presence.js'

/**
 * The backend and fallback API under /v1 (SPEC §3). Every route here needs the
 * engine: while it cannot serve, they all answer 503 REDIS_NOT_READY at once.
 */
export default async function v1Routes (app: FastifyInstance): Promise<void> {
  app.decorateRequest('token', null)
  app.addHook('onRequest', async () => {
    if (!app.engine.isReady()) throw new GatewayError('REDIS_NOT_READY', { retryAfterSeconds: ENGINE_RETRY_AFTER_SECONDS })
  })
  await app.register(publishRoute)
  await app.register(disconnectRoute)
  await app.register(pollRoute)
  await app.register(historyRoute)
  await app.register(presenceRoute)
}
