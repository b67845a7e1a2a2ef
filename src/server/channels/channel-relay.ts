import type { SubscribeFrame } from '../../protocol/frames.js'
import { EngineUnavailableError, type ChannelMessage, type Engine, type EngineLogger } from '../engine/engine.js'
import { formatOffset, parseOffset, type ChannelPosition } from '../../protocol/offsets.js'
import type { Connection } from '../ws/connection.js'
import { batchRead, chooseBase, nextHint, resumeFrom, type HistoryHint, type Resumption } from './recovery.js'
import { ReplayScheduler, type ReplayJob } from './replay-scheduler.js'

type RequestId = string | number

/** One connection's view of one channel: where it is, and live messages held while it replays. */
export interface ChannelSubscription {
  epoch: string
  lastSeq: number
  /** Live messages that arrived while history was being read or replayed; null once live. */
  pending: ChannelMessage[] | null
  /** The subscribe's own request id. */
  readonly id: RequestId | undefined
  /**
   * Ids of earlier subscribes of this channel that this one superseded before they
   * were answered. SPEC §5: each still gets exactly one answer, the same as this one's.
   */
  readonly superseded: readonly RequestId[]
  /** Set once `subscribed` (or an error, or `unsubscribed`) has been sent for every id above. */
  answered: boolean
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
  /** Resumes waiting for the next history read of this channel. */
  queued: Resume[]
  /** While a read is in flight: the resumes that arrived since, served by it when it covers them. */
  joining: Resume[] | undefined
  /** A read is due on the next turn (so the resumes of one burst share it). */
  readDue: boolean
  /** What the last read taught about the history (recovery.ts chooseBase). */
  hint: HistoryHint | undefined
}

/** A subscribe waiting for the history read that answers it. */
interface Resume {
  readonly connection: Connection
  readonly subscription: ChannelSubscription
  readonly since: ChannelPosition | undefined
  /** The channel's position on this instance when the subscription was registered (recovery.ts ResumeRequest). */
  readonly seen: ChannelPosition | undefined
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

/** The replayed messages of one read, each frame text built once for all the resumes it serves. */
class ReplaySource {
  readonly messages: readonly ChannelMessage[]
  readonly #texts: Array<string | undefined>

  constructor (messages: readonly ChannelMessage[]) {
    this.messages = messages
    this.#texts = new Array<string | undefined>(messages.length)
  }

  /** The frame text of `messages[index]` (given as `message`). */
  text (index: number, message: ChannelMessage): string {
    const text = this.#texts[index] ?? messageFrameText(message)
    this.#texts[index] = text
    return text
  }
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
 *
 * Resumes are coalesced per channel (docs/architecture.md, "Resume under an
 * avalanche"): the subscribes of a channel that arrive together share one history
 * read, and replays are written in slices of REPLAY_FRAMES_PER_TURN frames, so a
 * reconnect avalanche costs a few reads per channel and never stalls the event loop.
 */
export class ChannelRelay {
  readonly #engine: Engine
  readonly #logger: EngineLogger
  readonly #maxChannelsPerConnection: number
  readonly #channels = new Map<string, ChannelState>()
  /** Set by the drain: long-polls answer at once instead of waiting. */
  #releasingWaiters = false
  readonly #metrics: RelayMetrics | undefined
  readonly #replays: ReplayScheduler

  constructor (options: { engine: Engine, logger: EngineLogger, maxChannelsPerConnection: number, metrics?: RelayMetrics, replayFramesPerTurn?: number }) {
    this.#engine = options.engine
    this.#replays = new ReplayScheduler(options.replayFramesPerTurn)
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
    // A later subscribe of the same channel wins (its `since` decides the stream); an
    // earlier one not answered yet is answered together with it (SPEC §5).
    const previous = connection.subscriptions.get(channel)
    const superseded = previous === undefined || previous.answered ? [] : [...previous.superseded, ...(previous.id === undefined ? [] : [previous.id])]
    const subscription: ChannelSubscription = { epoch: '', lastSeq: 0, pending: [], id: frame.id, superseded, answered: false }
    connection.subscriptions.set(channel, subscription)
    const state = this.#join(channel, connection)
    // From here on every live message reaches `pending`: the read must not be older than this.
    const seen = state.epoch === '' ? undefined : { epoch: state.epoch, seq: state.seq }
    try {
      await state.listening
      // Unsubscribed, closed or subscribed again meanwhile: that one answers.
      if (connection.subscriptions.get(channel) !== subscription) return
      await new Promise<void>((resolve, reject) => {
        this.#queueResume(state, { connection, subscription, since, seen, resolve, reject })
      })
    } catch (err) {
      // Not current any more: whoever replaced it answers for it.
      if (connection.subscriptions.get(channel) !== subscription) return
      connection.subscriptions.delete(channel)
      this.#leave(channel, connection)
      subscription.answered = true
      const code = err instanceof EngineUnavailableError ? 'REDIS_NOT_READY' : 'INTERNAL_ERROR'
      for (const id of subscription.superseded) connection.send({ type: 'error', code, id })
      // Anything else is a bug: the connection's handler logs it and answers this id.
      if (code === 'INTERNAL_ERROR') throw err
      connection.send({ type: 'error', code, ...id })
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
    const subscription = connection.subscriptions.get(channel)
    if (subscription === undefined) return
    connection.subscriptions.delete(channel)
    this.#leave(channel, connection)
    if (subscription.answered) return
    // SPEC §5: a subscribe still waiting for its history read never took effect. It is
    // answered `unsubscribed` (with its own id), just before the unsubscribe's own
    // answer (routes/ws.ts sends that right after this returns); no message follows.
    subscription.answered = true
    for (const id of [...subscription.superseded, ...(subscription.id === undefined ? [] : [subscription.id])]) {
      connection.send({ type: 'unsubscribed', channel, id })
    }
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
      state = {
        channel,
        subscribers: new Set(),
        waiters: new Set(),
        listening,
        epoch: '',
        seq: 0,
        tail: Promise.resolve(),
        queued: [],
        joining: undefined,
        readDue: false,
        hint: undefined
      }
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

  /**
   * A resume joins the read in flight (it is served by it if the read covers it) or
   * waits for the next one, due on the next turn of the event loop so that every
   * subscribe of a burst shares it: an avalanche costs O(channels) reads, not O(clients).
   */
  #queueResume (state: ChannelState, resume: Resume): void {
    if (state.joining !== undefined) {
      state.joining.push(resume)
      return
    }
    state.queued.push(resume)
    this.#scheduleRead(state)
  }

  #scheduleRead (state: ChannelState): void {
    if (state.readDue) return
    state.readDue = true
    setImmediate(() => {
      state.readDue = false
      this.#readBatch(state).catch((err: unknown) => {
        this.#logger.error({ event: 'relay.failed', err }, 'resume batch failed')
      })
    })
  }

  /** One history read for every queued resume of a channel; each is answered from it or queued again. */
  async #readBatch (state: ChannelState): Promise<void> {
    if (state.joining !== undefined) return
    const members: Resume[] = []
    for (const resume of state.queued) {
      if (this.#isCurrent(state.channel, resume)) members.push(resume)
      else resume.resolve()
    }
    state.queued = []
    if (members.length === 0) return
    const base = chooseBase(members.map((resume) => resume.since), state.hint)
    const joining: Resume[] = []
    state.joining = joining
    try {
      const read = await this.#engine.readHistory(state.channel, base)
      state.joining = undefined
      if (state.epoch === '') {
        state.epoch = read.epoch
        state.seq = read.seq
      }
      const batch = batchRead(base, read, state.hint)
      state.hint = nextHint(batch)
      const source = new ReplaySource(read.messages)
      for (const [resumes, fresh] of [[members, true], [joining, false]] as const) {
        for (const resume of resumes) {
          if (!this.#isCurrent(state.channel, resume)) {
            resume.resolve()
            continue
          }
          const resumption = resumeFrom(batch, { since: resume.since, seen: resume.seen, fresh })
          if (resumption === undefined) state.queued.push(resume)
          else this.#replay(state.channel, resume, resumption, source)
        }
      }
    } catch (err) {
      state.joining = undefined
      // Already settled ones ignore this; the others answer their error.
      for (const resume of [...members, ...joining]) resume.reject(err)
    }
    if (state.queued.length > 0) this.#scheduleRead(state)
  }

  #isCurrent (channel: string, resume: Resume): boolean {
    return resume.connection.subscriptions.get(channel) === resume.subscription
  }

  /**
   * Answers a resume, then replays its messages and the live ones held meanwhile, in
   * slices (ReplayScheduler); it goes live in the same step that delivers the last
   * held message, so none is lost or doubled at the seam.
   */
  #replay (channel: string, resume: Resume, resumption: Resumption, source: ReplaySource): void {
    const { connection, subscription } = resume
    subscription.epoch = resumption.offset.epoch
    subscription.lastSeq = resumption.offset.seq
    let next = resumption.from
    let held = 0
    const job: ReplayJob & { done: boolean } = {
      done: false,
      run: (budget) => {
        // Unsubscribed, closed or subscribed again: the replay is no longer wanted.
        if (connection.subscriptions.get(channel) !== subscription) {
          job.done = true
          return 0
        }
        let written = 0
        if (!subscription.answered) written += this.#answer(connection, channel, subscription, resumption)
        for (let message = source.messages[next]; written < budget && message !== undefined; message = source.messages[next]) {
          this.#write(connection, subscription, message, source.text(next, message))
          next += 1
          written += 1
        }
        if (next < source.messages.length) return written
        // Then the live messages held meanwhile (more may arrive until the last is written).
        const pending = subscription.pending ?? []
        for (let message = pending[held]; written < budget && message !== undefined; message = pending[held]) {
          this.#write(connection, subscription, message, messageFrameText(message))
          held += 1
          written += 1
        }
        if (held < pending.length) return written
        subscription.pending = null
        job.done = true
        return written
      }
    }
    this.#replays.add(job)
    resume.resolve()
  }

  /** `subscribed` for the subscribe and every one it superseded: the same position for all. */
  #answer (connection: Connection, channel: string, subscription: ChannelSubscription, resumption: Resumption): number {
    subscription.answered = true
    const offset = formatOffset(resumption.offset)
    for (const id of subscription.superseded) connection.send({ type: 'subscribed', channel, id, offset, recovered: resumption.recovered })
    const id = subscription.id === undefined ? {} : { id: subscription.id }
    connection.send({ type: 'subscribed', channel, ...id, offset, recovered: resumption.recovered })
    return subscription.superseded.length + 1
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
    this.#write(connection, subscription, message, text)
  }

  #write (connection: Connection, subscription: ChannelSubscription, message: ChannelMessage, text: string): void {
    if (message.epoch !== subscription.epoch) this.#restart(connection, subscription, message.channel, message.epoch, message.seq - 1)
    if (message.seq <= subscription.lastSeq) return // replayed already: no duplicate at the seam
    subscription.lastSeq = message.seq
    connection.sendText(text)
  }
}
