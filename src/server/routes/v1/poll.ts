import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Static } from 'typebox'
import { BearerHeaders, OtherErrors, PollQuery, PollResponse, errorResponses } from '../../../protocol/http.js'
import { ChannelAccess } from '../../channels/channel-access.js'
import { EngineUnavailableError, type HistoryRead } from '../../engine/engine.js'
import { formatOffset, parseOffset } from '../../../protocol/offsets.js'
import { GatewayError } from '../../errors.js'
import { authenticateUser, userTokenOf } from '../authenticate.js'

function pollAnswer (read: HistoryRead, since: { epoch: string, seq: number } | undefined): Static<typeof PollResponse> {
  const resumed = since !== undefined && read.recovered
  const last = read.messages.at(-1)
  return {
    messages: read.messages.map((message) => ({
      type: 'message' as const,
      channel: message.channel,
      offset: formatOffset(message),
      data: JSON.parse(message.data) as unknown
    })),
    offset: formatOffset(last ?? (resumed ? since : read)),
    recovered: since === undefined || read.recovered
  }
}

/**
 * GET /v1/poll (SPEC §3): the fallback for clients whose WebSocket is unavailable.
 * Stateless (any instance answers): it reads the channel's history after `since`,
 * and when there is nothing yet, waits up to `timeoutMs` for the next message.
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
    const { channel, timeoutMs } = request.query
    const access = new ChannelAccess({ userId: token.sub, sessionId: token.sessionId, channelPatterns: token.channels })
    if (!access.canSubscribe(channel)) throw new GatewayError('FORBIDDEN_CHANNEL')
    const since = request.query.since === undefined ? undefined : parseOffset(request.query.since) ?? undefined

    // Listening starts before the first read: a message published in between wakes the wait.
    const waiter = app.relay.openWaiter(channel)
    // A client that goes away ends its wait early.
    reply.raw.once('close', () => { waiter.close() })
    try {
      await waiter.ready
      const first = await app.engine.readHistory(channel, since)
      // Not recovered (another epoch, trimmed away, or ahead of the head: SPEC §5) answers at once, from the head.
      if (since === undefined || !first.recovered || first.messages.length > 0 || timeoutMs === 0) return pollAnswer(first, since)
      await waiter.next(timeoutMs)
      return pollAnswer(await app.engine.readHistory(channel, since), since)
    } catch (err) {
      if (err instanceof EngineUnavailableError) throw new GatewayError('REDIS_NOT_READY', { retryAfterSeconds: 1 })
      throw err
    } finally {
      waiter.close()
    }
  })
}
