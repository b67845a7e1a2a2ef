import type { SubscribeFrame } from '../../protocol/frames.js'
import { EngineOverloadedError, EngineUnavailableError, type ChannelMessage, type Engine, type EngineLogger } from '../engine/engine.js'
import { parseOffset, type ChannelPosition } from '../../protocol/offsets.js'
import type { ChannelSubscriber } from './channel-subscriber.js'
import { ChannelSubscription, messageFrameText } from './channel-subscription.js'
import { ChannelResumes, type ChannelResumesOptions } from './channel-resumes.js'
import { classify, type StreamPosition } from './recovery.js'
import { ReplayScheduler } from './replay-scheduler.js'

/** What the relay counts (the app's GatewayMetrics). */
export interface RelayMetrics {
  /** Live gaps detected and filled from history (rtgw_relay_gap_fills_total). */
  readonly gapFills: { inc (): void }
}

/** A subscriber's subscriptions, by channel: kept here, not on the subscriber. */
type Subscriptions = Map<string, ChannelSubscription>

/** This instance's state of a channel with local subscribers or watchers. */
class ChannelState implements StreamPosition {
  readonly channel: string
  readonly subscribers = new Set<Subscriptions>()
  /** Told of each message as it is delivered here (channels/long-poll.ts). */
  readonly watchers = new Set<() => void>()
  /** Resolves once the engine delivers this channel's live messages here. */
  readonly listening: Promise<void>
  /** Last message seen live (or the position read when listening began): `epoch` '' for none yet. */
  epoch = ''
  seq = 0
  /** Live messages are handled one after another, so a gap fill never reorders them. */
  tail: Promise<void> = Promise.resolve()
  readonly resumes: ChannelResumes

  constructor (channel: string, listening: Promise<void>, resumes: Omit<ChannelResumesOptions, 'channel' | 'live'>) {
    this.channel = channel
    this.listening = listening
    this.resumes = new ChannelResumes({ ...resumes, channel, live: this })
  }
}

/** A watch of one channel's live messages (ChannelRelay.watch). */
export interface ChannelWatch {
  /** Resolves once live messages of the channel are received here. */
  readonly ready: Promise<void>
  /** Stops watching; the channel is left when nothing else uses it. Idempotent. */
  close (): void
}

/**
 * Channels on this instance (SPEC §5): at most one engine subscription per channel
 * with local subscribers, fan-out, resume from history (channel-resumes.ts) and gap
 * detection. Every message of a channel carries a gapless seq, so a live message whose
 * seq jumps means pub/sub lost something (a Redis reconnect): the missing ones are
 * read from history and delivered first. A new epoch means the history itself was
 * lost: subscribers are told (`subscribed` with `recovered:false`) rather than left
 * with a silent gap. Every such decision is recovery.ts's.
 */
export class ChannelRelay {
  readonly #engine: Engine
  readonly #logger: EngineLogger
  readonly #maxChannelsPerSubscriber: number
  readonly #channels = new Map<string, ChannelState>()
  readonly #subscriptions = new WeakMap<ChannelSubscriber, Subscriptions>()
  readonly #metrics: RelayMetrics | undefined
  readonly #replays: ReplayScheduler
  /** Subscriptions whose subscribe took effect (subscribe() answered true): their unsubscribe is one too. */
  readonly #effective = new WeakSet<ChannelSubscription>()

  constructor (options: { engine: Engine, logger: EngineLogger, maxChannelsPerConnection: number, metrics?: RelayMetrics, replayFramesPerTurn?: number }) {
    this.#engine = options.engine
    this.#replays = new ReplayScheduler(options.replayFramesPerTurn)
    this.#logger = options.logger
    this.#maxChannelsPerSubscriber = options.maxChannelsPerConnection
    this.#metrics = options.metrics
    this.#engine.onChannelMessage((message) => { this.#onLive(message) })
    // After a reconnect, pub/sub may have missed anything: re-read every active channel.
    this.#engine.onReadyChange((ready) => {
      if (!ready) return
      for (const state of this.#channels.values()) this.#enqueue(state, async () => { await this.#resync(state) })
    })
  }

  /** Channels this instance listens to: with local subscribers or long-polls. */
  get channelCount (): number {
    return this.#channels.size
  }

  /** A join/leave frame (SPEC §11; no offset, not in history) to this channel's current local subscribers. */
  sendPresenceFrame (channel: string, text: string, type: 'join' | 'leave'): void {
    const state = this.#channels.get(channel)
    if (state === undefined) return
    for (const subscriptions of state.subscribers) {
      const subscription = subscriptions.get(channel)
      if (subscription?.current === true) subscription.subscriber.sendText(text, type)
    }
  }

  /** True when this subscribe took effect (answered `subscribed`, or about to be); false when refused, failed or superseded. */
  async subscribe (subscriber: ChannelSubscriber, frame: SubscribeFrame): Promise<boolean> {
    const { channel } = frame
    const id = frame.id === undefined ? {} : { id: frame.id }
    if (!subscriber.access.canSubscribe(channel)) {
      subscriber.send({ type: 'error', code: 'FORBIDDEN_CHANNEL', ...id })
      return false
    }
    const subscriptions = this.#subscriptionsOf(subscriber)
    if (!subscriptions.has(channel) && subscriptions.size >= this.#maxChannelsPerSubscriber) {
      subscriber.send({ type: 'error', code: 'TOO_MANY_CHANNELS', message: `at most ${this.#maxChannelsPerSubscriber} channels per connection`, ...id })
      return false
    }
    const since = frame.since === undefined ? undefined : parseOffset(frame.since) ?? undefined
    // A later subscribe of the same channel wins (its `since` decides the stream); an
    // earlier one not answered yet is answered together with it (SPEC §5).
    const previous = subscriptions.get(channel)
    const superseded = previous === undefined || previous.answered ? [] : previous.requestIds
    const subscription = new ChannelSubscription(subscriber, channel, { id: frame.id, superseded }, subscriptions)
    subscriptions.set(channel, subscription)
    const state = this.#join(channel, subscriptions)
    // From here on every live message reaches `pending`: the read must not be older than this.
    const seen: ChannelPosition | undefined = state.epoch === '' ? undefined : { epoch: state.epoch, seq: state.seq }
    try {
      await state.listening
      // Unsubscribed, closed or subscribed again meanwhile: that one answers.
      if (!subscription.current) return false
      await new Promise<void>((resolve, reject) => {
        state.resumes.add({ subscription, since, seen, resolve, reject })
      })
      if (subscription.current) this.#effective.add(subscription)
      return subscription.current
    } catch (err) {
      // Not current any more: whoever replaced it answers for it.
      if (!subscription.current) return false
      subscriptions.delete(channel)
      this.#leave(channel, subscriptions)
      subscription.answered = true
      // Our own stalled loop (redis-command-runner.ts) is OVERLOADED, retryable like REDIS_NOT_READY.
      const code = err instanceof EngineUnavailableError ? 'REDIS_NOT_READY' : err instanceof EngineOverloadedError ? 'OVERLOADED' : 'INTERNAL_ERROR'
      for (const each of subscription.superseded) subscriber.send({ type: 'error', code, id: each })
      // Anything else is a bug: the connection's handler logs it and answers this id.
      if (code === 'INTERNAL_ERROR') throw err
      subscriber.send({ type: 'error', code, ...id })
      return false
    }
  }

  /** True when it ended a subscription whose subscribe took effect (subscribe() answered true). */
  unsubscribe (subscriber: ChannelSubscriber, channel: string): boolean {
    const subscriptions = this.#subscriptions.get(subscriber)
    const subscription = subscriptions?.get(channel)
    if (subscriptions === undefined || subscription === undefined) return false
    subscriptions.delete(channel)
    this.#leave(channel, subscriptions)
    if (subscription.answered) return this.#effective.has(subscription)
    // SPEC §5: a subscribe still waiting for its history read never took effect. It is
    // answered `unsubscribed` (with its own id), just before the unsubscribe's own
    // answer (routes/ws.ts sends that right after this returns); no message follows.
    subscription.answered = true
    for (const id of subscription.requestIds) subscriber.send({ type: 'unsubscribed', channel, id })
    return this.#effective.has(subscription)
  }

  /** A closed subscriber leaves every channel. */
  remove (subscriber: ChannelSubscriber): void {
    const subscriptions = this.#subscriptions.get(subscriber)
    if (subscriptions === undefined) return
    for (const channel of subscriptions.keys()) this.#leave(channel, subscriptions)
    subscriptions.clear()
    this.#subscriptions.delete(subscriber)
  }

  /**
   * Listens to a channel without subscribing (a long-poll): `onMessage` runs as each
   * live message is delivered here. Open it before reading history, so a message
   * published in between is not missed; `close()` must be called.
   */
  watch (channel: string, onMessage: () => void): ChannelWatch {
    const state = this.#join(channel)
    state.watchers.add(onMessage)
    let open = true
    return {
      ready: state.listening,
      close: () => {
        if (!open) return
        open = false
        state.watchers.delete(onMessage)
        this.#leave(channel)
      }
    }
  }

  #subscriptionsOf (subscriber: ChannelSubscriber): Subscriptions {
    let subscriptions = this.#subscriptions.get(subscriber)
    if (subscriptions === undefined) {
      subscriptions = new Map()
      this.#subscriptions.set(subscriber, subscriptions)
    }
    return subscriptions
  }

  #join (channel: string, subscriptions?: Subscriptions): ChannelState {
    let state = this.#channels.get(channel)
    if (state === undefined) {
      const listening = this.#engine.listen(channel)
      const created = new ChannelState(channel, listening, { engine: this.#engine, replays: this.#replays })
      state = created
      // A failed listen is not kept: the next subscriber tries again.
      listening.catch(() => { if (this.#channels.get(channel) === created) this.#channels.delete(channel) })
      this.#channels.set(channel, state)
    }
    if (subscriptions !== undefined) state.subscribers.add(subscriptions)
    return state
  }

  #leave (channel: string, subscriptions?: Subscriptions): void {
    const state = this.#channels.get(channel)
    if (state === undefined) return
    if (subscriptions !== undefined) state.subscribers.delete(subscriptions)
    if (state.subscribers.size > 0 || state.watchers.size > 0) return
    this.#channels.delete(channel)
    // Nothing to undo if it fails: a stray live message of a channel left here is ignored (#onLive).
    this.#engine.unlisten(channel).catch(() => {})
  }

  #enqueue (state: ChannelState, work: () => Promise<void>): void {
    state.tail = state.tail.then(work).catch((err: unknown) => {
      // Logging is all there is to do: the channel's position only moves when a message
      // is delivered, so what this step could not deliver (a gap fill or resync whose
      // read failed) is read again by the next live message's gap fill, or by the
      // resync when the engine is ready again. Nothing is lost silently.
      this.#logger.error({ event: 'relay.failed', err }, 'channel delivery failed')
    })
  }

  #onLive (message: ChannelMessage): void {
    const state = this.#channels.get(message.channel)
    if (state !== undefined) this.#enqueue(state, async () => { await this.#ingest(state, message) })
  }

  async #ingest (state: ChannelState, message: ChannelMessage): Promise<void> {
    const arrival = classify(this.#positionOf(state), message)
    if (arrival === 'duplicate') return // already delivered by a gap fill
    if (arrival === 'gap') await this.#fillGap(state, message)
    this.#fanOut(state, message)
  }

  /** Delivers what pub/sub skipped, from history; or says history is lost. */
  async #fillGap (state: ChannelState, next: ChannelMessage): Promise<void> {
    this.#metrics?.gapFills.inc()
    this.#logger.warn({ event: 'relay.gap', from: state.seq, to: next.seq }, 'live message gap: filling from history')
    const read = await this.#engine.readHistory(state.channel, { epoch: state.epoch, seq: state.seq })
    if (!read.recovered) {
      this.#announceLoss(state, { epoch: next.epoch, seq: next.seq - 1 })
      return
    }
    for (const missed of read.messages) if (missed.seq < next.seq) this.#fanOut(state, missed)
  }

  async #resync (state: ChannelState): Promise<void> {
    if (state.epoch === '') return
    const read = await this.#engine.readHistory(state.channel, { epoch: state.epoch, seq: state.seq })
    if (!read.recovered) {
      this.#announceLoss(state, read)
      return
    }
    for (const message of read.messages) this.#fanOut(state, message)
  }

  /** History was lost: every live subscriber is told, then goes on from the new position. */
  #announceLoss (state: ChannelState, position: ChannelPosition): void {
    state.epoch = position.epoch
    state.seq = position.seq
    for (const subscriptions of state.subscribers) {
      const subscription = subscriptions.get(state.channel)
      if (subscription !== undefined && subscription.pending === null) subscription.restart(position)
    }
  }

  #fanOut (state: ChannelState, message: ChannelMessage): void {
    if (classify(this.#positionOf(state), message) === 'new-epoch') this.#announceLoss(state, { epoch: message.epoch, seq: message.seq - 1 })
    state.epoch = message.epoch
    state.seq = message.seq
    for (const watcher of state.watchers) watcher()
    const text = messageFrameText(message)
    for (const subscriptions of state.subscribers) subscriptions.get(state.channel)?.deliver(message, text)
  }

  /** Nothing seen live yet (`epoch` ''): whatever comes first starts the channel's stream. */
  #positionOf (state: ChannelState): ChannelPosition | undefined {
    return state.epoch === '' ? undefined : state
  }
}
