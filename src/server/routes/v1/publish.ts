import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, PublishBody, PublishResponse, errorResponses, type PublishMessage } from '../../../protocol/http.js'
import { requireScope } from '../authenticate.js'

/** POST /v1/publish (SPEC §3): backends publish to channels; one message or a batch. */
export default async function publishRoute (app: FastifyInstance): Promise<void> {
  const publishOne = async (message: PublishMessage): Promise<{ channel: string, offset: string }> =>
    await app.publisher.publish(message.channel, message.data, message.idempotencyKey)

  app.withTypeProvider<TypeBoxTypeProvider>().post('/v1/publish', {
    bodyLimit: 1024 * 1024,
    schema: {
      tags: ['backend'],
      summary: 'Publish a message (or a batch of up to 100) to channels',
      description: 'Needs a service token with the `gateway:publish` scope. The same idempotencyKey on the same channel within 5 minutes returns the first offset and publishes nothing.',
      security: [{ bearerAuth: [] }],
      headers: BearerHeaders,
      body: PublishBody,
      response: {
        200: PublishResponse,
        ...errorResponses('BAD_REQUEST', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'INSUFFICIENT_SCOPE', 'MESSAGE_TOO_LARGE_FOR_CLIENTS', 'PAYLOAD_TOO_LARGE', 'REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    preHandler: requireScope('gateway:publish')
  }, async (request) => {
    if ('messages' in request.body) {
      // In order, so messages to one channel keep the batch's order.
      const results = []
      for (const message of request.body.messages) results.push(await publishOne(message))
      return { results }
    }
    return await publishOne(request.body)
  })
}
