import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, PresenceQuery, PresenceResponse, errorResponses } from '../../../protocol/http.js'
import { GatewayError } from '../../errors.js'
import { requireScope } from '../authenticate.js'

/** GET /v1/presence (SPEC §11): a service token with `gateway:presence`, then a channel's or a user's presence (channels/channel-presence.ts). */
export default async function presenceRoute (app: FastifyInstance): Promise<void> {
  app.withTypeProvider<TypeBoxTypeProvider>().get('/v1/presence', {
    schema: {
      tags: ['backend'],
      summary: 'Who is in a presence channel, or whether a user is online',
      description: 'Needs a service token with the `gateway:presence` scope and exactly one of `channel` and `userId`. `channel`: at most 1000 users with their connection counts and `info`, the exact totals, `truncated` when users were left out; a channel outside PRESENCE_CHANNELS is a 400 PRESENCE_NOT_ENABLED. `userId`: the user\'s sessions on every instance. Unknown parameters are a 400.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      querystring: PresenceQuery,
      response: {
        200: PresenceResponse,
        ...errorResponses('BAD_REQUEST', 'PRESENCE_NOT_ENABLED', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'INSUFFICIENT_SCOPE', 'REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: requireScope('gateway:presence')
  }, async (request) => {
    const { channel, userId } = request.query
    if ((channel === undefined) === (userId === undefined)) throw new GatewayError('BAD_REQUEST', { message: 'exactly one of channel and userId is required' })
    return channel === undefined ? await app.presence.user(userId ?? '') : await app.presence.query(channel)
  })
}
