import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, DisconnectBody, DisconnectResponse, OtherErrors, errorResponses } from '../../../protocol/http.js'
import { revocationTargetOf } from '../../tickets/revocations.js'
import { formatDisconnectMessage } from '../../ws/disconnect-message.js'
import { requireScope } from '../authenticate.js'

/**
 * POST /v1/disconnect (SPEC §3): logout or ban. The request is broadcast to every
 * instance over the engine's control channel; each one's hub closes its matching
 * sockets with 4403 SESSION_REVOKED (ws/hub.ts). With `revokeSeconds` the ban is stored
 * in the engine first (instances that start later load it) and every instance
 * remembers it, so tickets are refused (tickets/revocations.ts). The answer says it was
 * requested, not how many closed: that happens on other instances.
 */
export default async function disconnectRoute (app: FastifyInstance): Promise<void> {
  app.withTypeProvider<TypeBoxTypeProvider>().post('/v1/disconnect', {
    schema: {
      tags: ['backend'],
      summary: 'Close every socket of a user or a session, on every instance; optionally ban it',
      description: 'Needs a service token with the `gateway:disconnect` scope. Matching sockets are closed with 4403 SESSION_REVOKED within a second. With `revokeSeconds`, for that long `POST /ws-ticket` refuses the user or session with 401 SESSION_REVOKED and its tickets, also those issued before, are refused at the upgrade with 4403. Unknown fields are a 400.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      body: DisconnectBody,
      response: {
        200: DisconnectResponse,
        ...errorResponses('BAD_REQUEST', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'INSUFFICIENT_SCOPE', 'REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: requireScope('gateway:disconnect')
  }, async (request) => {
    const { revokeSeconds } = request.body
    const target = revocationTargetOf(request.body)
    // Stored before the broadcast: an instance that starts in between loads it.
    if (revokeSeconds !== undefined && target !== undefined) {
      await app.engine.storeRevocation(target, revokeSeconds)
      app.hub.rememberBan(request.body, revokeSeconds)
    }
    await app.engine.broadcastControl(formatDisconnectMessage(request.body))
    return { requested: true as const }
  })
}
