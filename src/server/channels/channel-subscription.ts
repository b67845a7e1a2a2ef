import type { ChannelMessage } from '../engine/engine.js'
import { formatOffset, type ChannelPosition } from '../../protocol/offsets.js'
import type { MessageFrame } from '../../protocol/server-frames.js'
import type { ChannelSubscriber } from './channel-subscriber.js'
import { advance, type Arrival, type Resumption, type StreamPosition } from './recovery.js'

export type RequestId = string | number

/** The §5 delivery frame, built once per message and sent as is to every local subscriber. */
/** The §5 delivery frame as an object, for HTTP answers (long-poll, history): `data` parsed back. */
export function messageFrameBody (message: ChannelMessage): MessageFrame {
  return {
    type: 'message',
    channel: message.channel,
    offset: formatOffset(message),
    ...(message.from === undefined ? {} : { from: message.from }),
    data: JSON.parse(message.data) as unknown
  }
}

export function messageFrameText (message: ChannelMessage): string {
  // SPEC §9: a client publish carries the gateway's `from`, a backend publish none.
  const from = message.from === undefined ? '' : `,"from":${JSON.stringify(message.from)}`
  return `{"type":"message","channel":${JSON.stringify(message.channel)},"offset":"${formatOffset(message)}"${from},"data":${message.data}}`
}

/**
 * One subscriber's stream of one channel (SPEC §5): where it stands, the live messages
 * held while its resume is read and replayed, and the subscribe requests it still owes
 * an answer. The relay keeps these per subscriber; the subscriber knows nothing of them.
 */
export class ChannelSubscription implements StreamPosition {
  readonly subscriber: ChannelSubscriber
  readonly channel: string
  /** The subscribe's own request id. */
  readonly id: RequestId | undefined
  /**
   * Ids of earlier subscribes of this channel that this one superseded before they
   * were answered. SPEC §5: each still gets exactly one answer, the same as this one's.
   */
  readonly superseded: readonly RequestId[]
  /** Set once `subscribed` (or an error, or `unsubscribed`) has been sent for every id above. */
  answered = false
  /** The last message delivered (from `subscribed`'s offset on). */
  epoch = ''
  seq = 0
  /** Live messages that arrived while history was being read or replayed; null once live. */
  pending: ChannelMessage[] | null = []
  /** The subscriber's subscriptions, by channel: this one is current while it is listed there. */
  readonly #registry: ReadonlyMap<string, ChannelSubscription>

  constructor (subscriber: ChannelSubscriber, channel: string, request: { readonly id: RequestId | undefined, readonly superseded: readonly RequestId[] }, registry: ReadonlyMap<string, ChannelSubscription>) {
    this.subscriber = subscriber
    this.channel = channel
    this.id = request.id
    this.superseded = request.superseded
    this.#registry = registry
  }

  /** False once unsubscribed, closed, or replaced by a later subscribe of the channel. */
  get current (): boolean {
    return this.#registry.get(this.channel) === this
  }

  /** Every id this subscription answers for, in request order. */
  get requestIds (): RequestId[] {
    return this.id === undefined ? [...this.superseded] : [...this.superseded, this.id]
  }

  /** `subscribed` for the subscribe and every one it superseded: the same position for all. Returns the frames sent. */
  answer (resumption: Resumption): number {
    this.answered = true
    const offset = formatOffset(resumption.offset)
    for (const id of this.superseded) this.subscriber.send({ type: 'subscribed', channel: this.channel, id, offset, recovered: resumption.recovered })
    const id = this.id === undefined ? {} : { id: this.id }
    this.subscriber.send({ type: 'subscribed', channel: this.channel, ...id, offset, recovered: resumption.recovered })
    return this.superseded.length + 1
  }

  /** A live message: held while the resume replays, written once live. */
  deliver (message: ChannelMessage, text: string): void {
    if (this.pending !== null) {
      this.pending.push(message)
      return
    }
    this.write(message, advance(this, message), text)
  }

  /** Writes one message of the stream, already advanced to: a duplicate is skipped, a new epoch announced first. */
  write (message: ChannelMessage, arrival: Arrival, text: string): void {
    if (arrival === 'duplicate') return // replayed already: no duplicate at the seam
    if (arrival === 'new-epoch') this.#announce({ epoch: message.epoch, seq: message.seq - 1 })
    this.subscriber.sendText(text)
  }

  /** Tells the subscriber its history is lost and moves it to `position` (SPEC §5). */
  restart (position: ChannelPosition): void {
    this.epoch = position.epoch
    this.seq = position.seq
    this.#announce(position)
  }

  #announce (position: ChannelPosition): void {
    this.subscriber.send({ type: 'subscribed', channel: this.channel, offset: formatOffset(position), recovered: false })
  }
}
