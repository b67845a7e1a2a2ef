import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, DisconnectBody, DisconnectResponse, OtherErrors, errorResponses } from '../../../protocol/http.js'
import { EngineUnavailableError } from '../../engine/engine.js'
import { GatewayError } from '../../errors.js'
import { requireScope } from '../authenticate.js'

/**
 * POST /v1/disconnect (SPEC §3): logout or ban. The request is broadcast to every
 * instance over the engine's control channel; each closes its matching sockets with
 * 4403 SESSION_REVOKED. The answer says it was requested, not how many closed: that
 * happens on other instances.
 */
export default async function disconnectRoute (app: FastifyInstance): Promise<void> {
  app.engine.onControl((message) => {
    let target: { kind?: string, userId?: string, sessionId?: string }
    try {
      target = JSON.parse(message) as typeof target
    } catch {
      return
    }
    if (target.kind !== 'disconnect') return
    const closed = app.hub.revoke(target)
    if (closed > 0) app.log.info({ event: 'ws.revoked', closed }, 'sessions revoked')
  })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/v1/disconnect', {
    schema: {
      tags: ['backend'],
      summary: 'Close every socket of a user or a session, on every instance',
      description: 'Needs a service token with the `gateway:disconnect` scope. Matching sockets are closed with 4403 SESSION_REVOKED within a second.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      body: DisconnectBody,
      response: {
        200: DisconnectResponse,
        ...errorResponses('BAD_REQUEST', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'INSUFFICIENT_SCOPE', 'REDIS_NOT_READY', 'AUTH_UNAVAILABLE'),
        default: OtherErrors
      }
    },
    preHandler: requireScope('gateway:disconnect')
  }, async (request) => {
    try {
      await app.engine.broadcastControl(JSON.stringify({ kind: 'disconnect', ...request.body }))
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw new GatewayError('REDIS_NOT_READY', { retryAfterSeconds: 1 })
      throw err
    }
    return { requested: true as const }
  })
}
