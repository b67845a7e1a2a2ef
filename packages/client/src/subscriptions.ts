import { formatOffset, parseOffset, type ChannelPosition } from '../../../src/protocol/offsets.js'

/**
 * The client's channel state (SPEC §6 resume): the last offset seen per channel, the
 * `subscribe` frames to send again after a reconnect, and duplicate suppression.
 * Offsets are `<epoch>:<seq>` (protocol/offsets.ts); the SDK compares `seq` within an
 * epoch and treats anything else as opaque.
 */
export interface SubscriptionEvents {
  /** A message the app has not seen yet, in order. */
  onMessage: (channel: string, data: unknown, offset: string, from?: string) => void
  /** The server could not replay what was missed (`recovered:false`): the app should refetch state. */
  onRecoveryFailed: (channel: string) => void
}

/** An offset this gateway did not issue leaves the channel without a position (resubscribed from now). */
function parse (offset: string): ChannelPosition | undefined {
  return parseOffset(offset) ?? undefined
}

export class Subscriptions {
  readonly #positions = new Map<string, ChannelPosition | undefined>()
  /** Channels the server (or a poll) has confirmed at least once since they were added. */
  readonly #confirmed = new Set<string>()
  readonly #events: SubscriptionEvents

  constructor (events: SubscriptionEvents) {
    this.#events = events
  }

  get channels (): string[] {
    return [...this.#positions.keys()]
  }

  /**
   * Starts keeping `channel`; `since` (an offset this gateway issued) is where its
   * first subscribe starts, later ones continue from the last offset seen. A channel
   * already kept keeps its position.
   */
  add (channel: string, since?: string): void {
    if (!this.#positions.has(channel)) this.#positions.set(channel, since === undefined ? undefined : parse(since))
  }

  remove (channel: string): void {
    this.#positions.delete(channel)
    this.#confirmed.delete(channel)
  }

  /** Whether `subscribed` (or a poll answer) has confirmed `channel` since it was added. */
  isConfirmed (channel: string): boolean {
    return this.#confirmed.has(channel)
  }

  has (channel: string): boolean {
    return this.#positions.has(channel)
  }

  /** The last offset seen on `channel`, once the server has given one. */
  offsetOf (channel: string): string | undefined {
    const position = this.#positions.get(channel)
    return position === undefined ? undefined : formatOffset(position)
  }

  /** The `subscribe` frame for `channel`: with `since` once an offset is known. */
  subscribeFrame (channel: string): { type: 'subscribe', channel: string, since?: string } {
    const since = this.offsetOf(channel)
    return since === undefined ? { type: 'subscribe', channel } : { type: 'subscribe', channel, since }
  }

  /** The `subscribe` frames for a (re)connect. */
  subscribeFrames (): Array<{ type: 'subscribe', channel: string, since?: string }> {
    return this.channels.map((channel) => this.subscribeFrame(channel))
  }

  /** Handles `subscribed`: its offset is where the following messages continue from. */
  onSubscribed (channel: string, offset: string, recovered: boolean): void {
    if (!this.#positions.has(channel)) return
    const previous = this.#positions.get(channel)
    this.#positions.set(channel, parse(offset))
    this.#confirmed.add(channel)
    // A first subscribe without `since` has nothing to recover; otherwise `false` means messages were lost.
    if (!recovered && previous !== undefined) this.#events.onRecoveryFailed(channel)
  }

  /** Handles `message`: delivered once, in order; a replayed duplicate is dropped. `from`: a client publish's user (SPEC §9). */
  onMessage (channel: string, offset: string, data: unknown, from?: string): void {
    if (!this.#positions.has(channel)) return
    const position = parse(offset)
    const last = this.#positions.get(channel)
    if (position !== undefined && last !== undefined && position.epoch === last.epoch && position.seq <= last.seq) return
    this.#positions.set(channel, position)
    this.#events.onMessage(channel, data, offset, from)
  }

  /**
   * Handles a `GET /v1/poll` answer: its messages, then its offset as the new
   * position. `recovered:false` means the history no longer reaches back to where
   * this client was, so what follows is delivered as a fresh start.
   */
  onPolled (channel: string, messages: ReadonlyArray<{ offset: string, data: unknown, from?: string }>, offset: string, recovered: boolean): void {
    if (!this.#positions.has(channel)) return
    this.#confirmed.add(channel)
    if (!recovered) {
      const previous = this.#positions.get(channel)
      this.#positions.set(channel, undefined)
      if (previous !== undefined) this.#events.onRecoveryFailed(channel)
    }
    for (const message of messages) this.onMessage(channel, message.offset, message.data, message.from)
    const position = parse(offset)
    const last = this.#positions.get(channel)
    if (last === undefined || (position !== undefined && (position.epoch !== last.epoch || position.seq > last.seq))) {
      this.#positions.set(channel, position)
    }
  }
}
