import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { BearerHeaders, OtherErrors, PublishBody, PublishResponse, errorResponses, type PublishMessage } from '../../../protocol/http.js'
import { EngineUnavailableError } from '../../engine/engine.js'
import { formatOffset } from '../../engine/offsets.js'
import { GatewayError } from '../../errors.js'
import { requireScope } from '../authenticate.js'

export interface PublishRouteOptions {
  /** A delivered frame must fit the clients' limit (WS_MAX_PAYLOAD_BYTES). */
  readonly maxFrameBytes: number
}

/** Room for the frame around `data`: type, channel and offset. */
const FRAME_OVERHEAD_BYTES = 300

/** POST /v1/publish (SPEC §3): backends publish to channels; one message or a batch. */
export default async function publishRoute (app: FastifyInstance, options: PublishRouteOptions): Promise<void> {
  const publishOne = async (message: PublishMessage): Promise<{ channel: string, offset: string }> => {
    const data = JSON.stringify(message.data ?? null)
    if (Buffer.byteLength(data) + FRAME_OVERHEAD_BYTES > options.maxFrameBytes) {
      throw new GatewayError('MESSAGE_TOO_LARGE_FOR_CLIENTS', { message: `data of ${message.channel} is over the ${options.maxFrameBytes}-byte frame limit` })
    }
    const started = performance.now()
    let outcome = 'error'
    try {
      const result = await app.engine.publish(message.channel, data, message.idempotencyKey === undefined ? {} : { idempotencyKey: message.idempotencyKey })
      outcome = 'ok'
      return { channel: message.channel, offset: formatOffset(result) }
    } finally {
      app.metrics.publishDuration.observe({ outcome }, (performance.now() - started) / 1000)
    }
  }

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
    try {
      if ('messages' in request.body) {
        // In order, so messages to one channel keep the batch's order.
        const results = []
        for (const message of request.body.messages) results.push(await publishOne(message))
        return { results }
      }
      return await publishOne(request.body)
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw new GatewayError('REDIS_NOT_READY', { retryAfterSeconds: 1 })
      throw err
    }
  })
}
