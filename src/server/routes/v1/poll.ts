import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, PollQuery, PollResponse, errorResponses } from '../../../protocol/http.js'
import { ChannelAccess } from '../../channels/channel-access.js'
import { authenticateUser, userTokenOf } from '../authenticate.js'

/**
 * GET /v1/poll (SPEC §3): the user token and its channel rules, then the long-poll
 * (channels/long-poll.ts).
 */
export default async function pollRoute (app: FastifyInstance): Promise<void> {
  app.withTypeProvider<TypeBoxTypeProvider>().get('/v1/poll', {
    schema: {
      tags: ['client'],
      summary: 'Long-poll a channel (fallback when the WebSocket is unavailable)',
      description: 'Same user token and channel rules as a WebSocket subscribe. Without `since`: the current offset at once. With `since`: the retained messages after it, or the next one within `timeoutMs`.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      querystring: PollQuery,
      response: {
        200: PollResponse,
        ...errorResponses('BAD_REQUEST', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'MISSING_SESSION', 'FORBIDDEN_CHANNEL', 'REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: authenticateUser
  }, async (request, reply) => {
    const token = userTokenOf(request)
    const access = new ChannelAccess({ userId: token.sub, sessionId: token.sessionId, channelPatterns: token.channels })
    // A client that goes away ends its wait early.
    const abandoned = new AbortController()
    reply.raw.once('close', () => { abandoned.abort() })
    return await app.longPoll.poll(access, request.query, abandoned.signal)
  })
}
