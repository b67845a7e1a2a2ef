import type { SubscribeFrame } from '../../protocol/frames.js'
import { EngineUnavailableError, type ChannelMessage, type Engine, type EngineLogger } from '../engine/engine.js'
import { formatOffset, parseOffset } from '../engine/offsets.js'
import type { Connection } from '../ws/connection.js'

/** One connection's view of one channel: where it is, and live messages held while it replays. */
export interface ChannelSubscription {
  epoch: string
  lastSeq: number
  /** Live messages that arrived while history was being read; null once live. */
  pending: ChannelMessage[] | null
}

/** What the relay counts (the app's GatewayMetrics). */
export interface RelayMetrics {
  /** Live gaps detected and filled from history (rtgw_relay_gap_fills_total). */
  readonly gapFills: { inc (): void }
}

/** This instance's state of a channel with local subscribers. */
interface ChannelState {
  readonly channel: string
  readonly subscribers: Set<Connection>
  /** Long-polls waiting for this channel's next message (GET /v1/poll). */
  readonly waiters: Set<() => void>
  /** Resolves once the engine delivers this channel's live messages here. */
  readonly listening: Promise<void>
  /** Last message seen live (or the position read when listening began). */
  epoch: string
  seq: number
  /** Live messages are handled one after another, so a gap fill never reorders them. */
  tail: Promise<void>
}

/** The §5 delivery frame, built once per message and sent as is to every local subscriber. */
function messageFrameText (message: ChannelMessage): string {
  return `{"type":"message","channel":${JSON.stringify(message.channel)},"offset":"${message.epoch}:${message.seq}","data":${message.data}}`
}

/**
 * Channels on this instance (SPEC §5): at most one engine subscription per channel
 * with local subscribers, resume from history, and gap detection. Every message of a
 * channel carries a gapless seq, so a live message whose seq jumps means pub/sub lost
 * something (a Redis reconnect): the missing ones are read from history and delivered
 * first. A new epoch means the history itself was lost: subscribers are told
 * (`subscribed` with `recovered:false`) rather than left with a silent gap.
 */
export class ChannelRelay {
  readonly #engine: Engine
  readonly #logger: EngineLogger
  readonly #maxChannelsPerConnection: number
  readonly #channels = new Map<string, ChannelState>()
  /** Set by the drain: long-polls answer at once instead of waiting. */
  #releasingWaiters = false
  readonly #metrics: RelayMetrics | undefined

  constructor (options: { engine: Engine, logger: EngineLogger, maxChannelsPerConnection: number, metrics?: RelayMetrics }) {
    this.#engine = options.engine
    this.#logger = options.logger
    this.#maxChannelsPerConnection = options.maxChannelsPerConnection
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

  /** Local subscriber count of a channel (0 when this instance does not listen to it). */
  subscriberCount (channel: string): number {
    return this.#channels.get(channel)?.subscribers.size ?? 0
  }

  async subscribe (connection: Connection, frame: SubscribeFrame): Promise<void> {
    const { channel } = frame
    const id = frame.id === undefined ? {} : { id: frame.id }
    if (!connection.access.canSubscribe(channel)) {
      connection.send({ type: 'error', code: 'FORBIDDEN_CHANNEL', ...id })
      return
    }
    if (!connection.subscriptions.has(channel) && connection.subscriptions.size >= this.#maxChannelsPerConnection) {
      connection.send({ type: 'error', code: 'TOO_MANY_CHANNELS', message: `at most ${this.#maxChannelsPerConnection} channels per connection`, ...id })
      return
    }
    const since = frame.since === undefined ? undefined : parseOffset(frame.since) ?? undefined
    const subscription: ChannelSubscription = { epoch: '', lastSeq: 0, pending: [] }
    connection.subscriptions.set(channel, subscription)
    const state = this.#join(channel, connection)
    try {
      await state.listening
      const read = await this.#engine.readHistory(channel, since)
      // Unsubscribed, closed or subscribed again meanwhile: that one wins.
      if (connection.subscriptions.get(channel) !== subscription) return
      if (state.epoch === '') {
        state.epoch = read.epoch
        state.seq = read.seq
      }
      const resumed = since !== undefined && read.recovered
      subscription.epoch = read.epoch
      subscription.lastSeq = resumed ? since.seq : read.seq
      connection.send({
        type: 'subscribed',
        channel,
        ...id,
        offset: formatOffset({ epoch: read.epoch, seq: subscription.lastSeq }),
        recovered: since === undefined || read.recovered
      })
      const pending = subscription.pending ?? []
      subscription.pending = null
      for (const message of read.messages) this.#deliver(connection, subscription, message, messageFrameText(message))
      for (const message of pending) this.#deliver(connection, subscription, message, messageFrameText(message))
    } catch (err) {
      if (connection.subscriptions.get(channel) === subscription) {
        connection.subscriptions.delete(channel)
        this.#leave(channel, connection)
      }
      if (!(err instanceof EngineUnavailableError)) throw err
      connection.send({ type: 'error', code: 'REDIS_NOT_READY', ...id })
    }
  }

  /**
   * Listens to a channel for a long-poll: `ready` resolves once live messages are
   * received, `next(ms)` when one arrives (at once if one already did) or the time
   * is up. `close()` must be called. Open it before reading history, so a message
   * published in between is not missed.
   */
  openWaiter (channel: string): { ready: Promise<void>, next: (timeoutMs: number) => Promise<boolean>, close: () => void } {
    const state = this.#join(channel)
    let arrived = false
    let wake: (() => void) | undefined
    const waiter = (): void => {
      arrived = true
      wake?.()
    }
    state.waiters.add(waiter)
    let open = true
    return {
      ready: state.listening,
      next: async (timeoutMs) => {
        if (arrived || this.#releasingWaiters) return arrived
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs)
          wake = () => { clearTimeout(timer); resolve() }
        })
        return arrived
      },
      close: () => {
        wake?.()
        if (!open) return
        open = false
        state.waiters.delete(waiter)
        this.#leave(channel)
      }
    }
  }

  /**
   * The drain: every long-poll waiting for a message answers now with what it has,
   * and later ones do not wait, so no poll holds a closing instance for its timeout.
   */
  releaseWaiters (): void {
    this.#releasingWaiters = true
    for (const state of this.#channels.values()) {
      for (const wake of state.waiters) wake()
    }
  }

  unsubscribe (connection: Connection, channel: string): void {
    if (connection.subscriptions.delete(channel)) this.#leave(channel, connection)
  }

  /** A closed connection leaves every channel. */
  removeConnection (connection: Connection): void {
    for (const channel of connection.subscriptions.keys()) this.#leave(channel, connection)
    connection.subscriptions.clear()
  }

  #join (channel: string, connection?: Connection): ChannelState {
    let state = this.#channels.get(channel)
    if (state === undefined) {
      const listening = this.#engine.listen(channel)
      state = { channel, subscribers: new Set(), waiters: new Set(), listening, epoch: '', seq: 0, tail: Promise.resolve() }
      const created = state
      // A failed listen is not kept: the next subscriber tries again.
      listening.catch(() => { if (this.#channels.get(channel) === created) this.#channels.delete(channel) })
      this.#channels.set(channel, state)
    }
    if (connection !== undefined) state.subscribers.add(connection)
    return state
  }

  #leave (channel: string, connection?: Connection): void {
    const state = this.#channels.get(channel)
    if (state === undefined) return
    if (connection !== undefined) state.subscribers.delete(connection)
    if (state.subscribers.size > 0 || state.waiters.size > 0) return
    this.#channels.delete(channel)
    this.#engine.unlisten(channel).catch(() => {})
  }

  #enqueue (state: ChannelState, work: () => Promise<void>): void {
    state.tail = state.tail.then(work).catch((err: unknown) => {
      this.#logger.error({ event: 'relay.failed', err }, 'channel delivery failed')
    })
  }

  #onLive (message: ChannelMessage): void {
    const state = this.#channels.get(message.channel)
    if (state !== undefined) this.#enqueue(state, async () => { await this.#ingest(state, message) })
  }

  async #ingest (state: ChannelState, message: ChannelMessage): Promise<void> {
    if (state.epoch === message.epoch) {
      if (message.seq <= state.seq) return // already delivered by a gap fill
      if (message.seq > state.seq + 1) await this.#fillGap(state, message)
    }
    this.#fanOut(state, message)
  }

  /** Delivers what pub/sub skipped, from history; or says history is lost. */
  async #fillGap (state: ChannelState, next: ChannelMessage): Promise<void> {
    this.#metrics?.gapFills.inc()
    this.#logger.warn({ event: 'relay.gap', from: state.seq, to: next.seq }, 'live message gap: filling from history')
    const read = await this.#engine.readHistory(state.channel, { epoch: state.epoch, seq: state.seq })
    if (!read.recovered) {
      this.#announceLoss(state, next.epoch, next.seq - 1)
      return
    }
    for (const missed of read.messages) if (missed.seq < next.seq) this.#fanOut(state, missed)
  }

  async #resync (state: ChannelState): Promise<void> {
    if (state.epoch === '') return
    const read = await this.#engine.readHistory(state.channel, { epoch: state.epoch, seq: state.seq })
    if (!read.recovered) {
      this.#announceLoss(state, read.epoch, read.seq)
      return
    }
    for (const message of read.messages) this.#fanOut(state, message)
  }

  /** History was lost: every subscriber is told, then goes on live from the new position. */
  #announceLoss (state: ChannelState, epoch: string, seq: number): void {
    state.epoch = epoch
    state.seq = seq
    for (const connection of state.subscribers) {
      const subscription = connection.subscriptions.get(state.channel)
      if (subscription !== undefined && subscription.pending === null) this.#restart(connection, subscription, state.channel, epoch, seq)
    }
  }

  #fanOut (state: ChannelState, message: ChannelMessage): void {
    if (state.epoch !== message.epoch && state.epoch !== '') this.#announceLoss(state, message.epoch, message.seq - 1)
    state.epoch = message.epoch
    state.seq = message.seq
    for (const wake of state.waiters) wake()
    const text = messageFrameText(message)
    for (const connection of state.subscribers) {
      const subscription = connection.subscriptions.get(state.channel)
      if (subscription !== undefined) this.#deliver(connection, subscription, message, text)
    }
  }

  /** Tells one subscriber its history is lost and moves it to the new position (SPEC §5). */
  #restart (connection: Connection, subscription: ChannelSubscription, channel: string, epoch: string, seq: number): void {
    subscription.epoch = epoch
    subscription.lastSeq = seq
    connection.send({ type: 'subscribed', channel, offset: formatOffset({ epoch, seq }), recovered: false })
  }

  #deliver (connection: Connection, subscription: ChannelSubscription, message: ChannelMessage, text: string): void {
    if (subscription.pending !== null) {
      subscription.pending.push(message)
      return
    }
    if (message.epoch !== subscription.epoch) this.#restart(connection, subscription, message.channel, message.epoch, message.seq - 1)
    if (message.seq <= subscription.lastSeq) return // replayed already: no duplicate at the seam
    subscription.lastSeq = message.seq
    connection.sendText(text)
  }
}
