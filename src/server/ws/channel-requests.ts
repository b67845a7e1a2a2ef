import type { PublishFrame, SubscribeFrame, UnsubscribeFrame } from '../../protocol/frames.js'
import type { ChannelTokenResult, ChannelTokenVerifier } from '../auth/channel-token-verifier.js'
import type { ChannelRelay } from '../channels/channel-relay.js'
import type { ChannelPublisher } from '../channels/publisher.js'
import type { ChannelSubscriber } from '../channels/channel-subscriber.js'
import { EngineOverloadedError, EngineUnavailableError } from '../engine/engine.js'
import type { EngineLogger } from '../engine/engine.js'
import { GatewayError } from '../errors.js'

/** How a `publish` frame was answered (rtgw_client_publishes_total{result}). */
export const CLIENT_PUBLISH_RESULTS = ['published', 'forbidden', 'too_large', 'unavailable', 'overloaded'] as const
export type ClientPublishResult = typeof CLIENT_PUBLISH_RESULTS[number]

export interface ClientPublishMetrics {
  clientPublish (result: ClientPublishResult): void
}

export interface ChannelRequestsOptions {
  readonly relay: Pick<ChannelRelay, 'subscribe' | 'unsubscribe'>
  readonly publisher: Pick<ChannelPublisher, 'publish'>
  readonly verifyChannelToken: ChannelTokenVerifier
  readonly logger?: EngineLogger
  readonly metrics?: ClientPublishMetrics
}

type RequestId = string | number | undefined

const idOf = (id: RequestId): { id?: string | number } => id === undefined ? {} : { id }

/**
 * A client publish's idempotency key, scoped to its user: one user's key never
 * suppresses another user's (or a backend's) message. The length prefix keeps
 * `a:b` + `c` and `a` + `b:c` apart.
 */
function clientIdempotencyKey (userId: string, key: string): string {
  return `u${userId.length}:${userId}:${key}`
}

/**
 * A connection's channel requests (SPEC §5, §9): subscribe (with or without a
 * subscription token), unsubscribe and publish, in the order the client sent them per
 * channel. Verifying a token is asynchronous; while one is pending, later requests of
 * that channel on that connection wait for it, so a token subscribe still registers
 * before an unsubscribe or subscribe sent after it (the relay's superseding rules then
 * give every request its one answer), and a publish sent right after a token with
 * `publish: true` sees the grant. Without a pending token, requests go straight through.
 */
export class ChannelRequests {
  readonly #options: ChannelRequestsOptions
  /** Per subscriber and channel: resolves when the last queued request has started. */
  readonly #queues = new WeakMap<ChannelSubscriber, Map<string, Promise<void>>>()

  constructor (options: ChannelRequestsOptions) {
    this.#options = options
  }

  /** True when the subscription took effect (lifecycle events, SPEC §12). */
  async subscribe (subscriber: ChannelSubscriber, frame: SubscribeFrame): Promise<boolean> {
    const { relay, verifyChannelToken } = this.#options
    const token = frame.token
    let subscribed = false
    if (token === undefined) {
      await this.#inOrder(subscriber, frame.channel, undefined, async () => { subscribed = await relay.subscribe(subscriber, frame) })
      return subscribed
    }
    // Verification starts at once; only its outcome waits for its turn.
    let result: ChannelTokenResult = { ok: false, code: 'CHANNEL_TOKEN_INVALID', reason: 'invalid' }
    const verified = verifyChannelToken(token, { userId: subscriber.identity.userId, channel: frame.channel })
      .then((outcome) => { result = outcome })
    await this.#inOrder(subscriber, frame.channel, verified, async () => {
      if (!result.ok) {
        this.#options.logger?.info({ event: 'ws.channel_token_rejected', reason: result.reason }, 'subscription token rejected')
        subscriber.send({ type: 'error', code: result.code, ...idOf(frame.id) })
        return
      }
      subscriber.access.grant(result.grant)
      subscribed = await relay.subscribe(subscriber, frame)
    })
    return subscribed
  }

  /** True when a subscription was ended; answered `unsubscribed` either way. */
  async unsubscribe (subscriber: ChannelSubscriber, frame: UnsubscribeFrame): Promise<boolean> {
    let unsubscribed = false
    await this.#inOrder(subscriber, frame.channel, undefined, () => {
      unsubscribed = this.#options.relay.unsubscribe(subscriber, frame.channel)
      subscriber.send({ type: 'unsubscribed', channel: frame.channel, ...idOf(frame.id) })
    })
    return unsubscribed
  }

  /** SPEC §9: through the same publisher as POST /v1/publish, with the gateway's `from`. */
  async publish (subscriber: ChannelSubscriber, frame: PublishFrame): Promise<void> {
    const { channel } = frame
    const count = (result: ClientPublishResult): void => { this.#options.metrics?.clientPublish(result) }
    await this.#inOrder(subscriber, channel, undefined, async () => {
      if (!subscriber.access.canPublish(channel)) {
        count('forbidden')
        subscriber.send({ type: 'error', code: 'FORBIDDEN_CHANNEL', ...idOf(frame.id) })
        return
      }
      const { userId } = subscriber.identity
      const key = frame.idempotencyKey === undefined ? undefined : clientIdempotencyKey(userId, frame.idempotencyKey)
      try {
        const { offset } = await this.#options.publisher.publish(channel, frame.data, key, userId)
        count('published')
        subscriber.send({ type: 'published', channel, ...idOf(frame.id), offset })
      } catch (err) {
        if (err instanceof EngineUnavailableError) {
          count('unavailable')
          subscriber.send({ type: 'error', code: 'REDIS_NOT_READY', ...idOf(frame.id) })
          return
        }
        if (err instanceof GatewayError && err.code === 'MESSAGE_TOO_LARGE_FOR_CLIENTS') {
          count('too_large')
          subscriber.send({ type: 'error', code: err.code, message: err.message, ...idOf(frame.id) })
          return
        }
        // Answered OVERLOADED by the connection's handler (ws/connection.ts).
        if (err instanceof EngineOverloadedError) count('overloaded')
        throw err
      }
    })
  }

  /**
   * Runs `run` once `ready` has settled and every earlier request of the channel has
   * started; resolves when `run` is done. The next request may start as soon as
   * `run`'s synchronous part has run (the relay registers a subscribe synchronously).
   */
  async #inOrder (subscriber: ChannelSubscriber, channel: string, ready: Promise<void> | undefined, run: () => Promise<void> | void): Promise<void> {
    let queue = this.#queues.get(subscriber)
    const before = queue?.get(channel)
    if (before === undefined && ready === undefined) {
      await run()
      return
    }
    if (queue === undefined) {
      queue = new Map()
      this.#queues.set(subscriber, queue)
    }
    let started!: () => void
    const turn = new Promise<void>((resolve) => { started = resolve })
    queue.set(channel, turn)
    let pending: Promise<void> | void
    try {
      await Promise.all([ready, before])
      pending = run()
    } finally {
      if (queue.get(channel) === turn) queue.delete(channel)
      started()
    }
    await pending
  }
}
