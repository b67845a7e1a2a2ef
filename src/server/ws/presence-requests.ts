import type { PresenceRequestFrame } from '../../protocol/frames.js'
import type { ChannelPresence } from '../channels/channel-presence.js'
import type { ChannelSubscriber } from '../channels/channel-subscriber.js'
import { EngineUnavailableError } from '../engine/engine.js'
import { GatewayError } from '../errors.js'

/**
 * The `presence` frame (SPEC §11): allowed to anyone who may subscribe to the channel
 * (its JWT patterns, its own channels, a subscription token presented on this
 * connection), answered with the channel's presence body. A channel outside
 * PRESENCE_CHANNELS is answered PRESENCE_NOT_ENABLED rather than an empty list, so an
 * app that forgot the variable learns it at once.
 */
export async function answerPresence (presence: Pick<ChannelPresence, 'query'>, subscriber: ChannelSubscriber, frame: PresenceRequestFrame): Promise<void> {
  const id = frame.id === undefined ? {} : { id: frame.id }
  if (!subscriber.access.canSubscribe(frame.channel)) {
    subscriber.send({ type: 'error', code: 'FORBIDDEN_CHANNEL', ...id })
    return
  }
  try {
    const body = await presence.query(frame.channel)
    subscriber.send({ type: 'presence', ...id, ...body })
  } catch (err) {
    if (err instanceof EngineUnavailableError) {
      subscriber.send({ type: 'error', code: 'REDIS_NOT_READY', ...id })
      return
    }
    if (err instanceof GatewayError && err.code === 'PRESENCE_NOT_ENABLED') {
      subscriber.send({ type: 'error', code: err.code, ...id })
      return
    }
    throw err
  }
}
