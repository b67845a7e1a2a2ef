import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, HistoryQuery, HistoryResponse, OtherErrors, errorResponses } from '../../../protocol/http.js'
import { requireScope } from '../authenticate.js'

/** GET /v1/history (SPEC §10): a service token with `gateway:history`, then the channel's history (channels/channel-history.ts). */
export default async function historyRoute (app: FastifyInstance): Promise<void> {
  app.withTypeProvider<TypeBoxTypeProvider>().get('/v1/history', {
    schema: {
      tags: ['backend'],
      summary: 'Read a channel\'s retained messages',
      description: 'Needs a service token with the `gateway:history` scope. Without `since`: the latest `limit` messages (default 100, at most 1000). With `since`: at most `limit` messages after it; page on with the answer\'s `offset`. A `since` from another epoch, older than the retained history or ahead of it answers no messages, `recovered: false` and the head. Unknown parameters are a 400.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      querystring: HistoryQuery,
      response: {
        200: HistoryResponse,
        ...errorResponses('BAD_REQUEST', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'INSUFFICIENT_SCOPE', 'REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: requireScope('gateway:history')
  }, async (request) => await app.channelHistory.read(request.query))
}
