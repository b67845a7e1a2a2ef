import type { GatewayClientError } from './errors.js'
import { Waiters } from './waiters.js'

export interface SubscribedInfo {
  readonly channel: string
  readonly offset: string
  /** False: messages were missed and cannot be replayed; refetch the state this channel feeds. */
  readonly recovered: boolean
}

export interface SubscribeRequestsOptions {
  /** The client's request counter, shared with send ids. */
  readonly nextRequestNumber: () => number
  /**
   * The `subscribe` frame for a channel, without its id (Subscriptions adds `since`).
   * A promise when the frame needs a subscription token first; `undefined` from it
   * when the request is no longer wanted once the token is there.
   */
  readonly frameOf: (channel: string) => object | Promise<object | undefined>
  /** Writes a frame to the socket if one is open. */
  readonly write: (text: string) => void
  /** Injected for tests; Math.random otherwise. */
  readonly random?: () => number
}

/**
 * A subscribe refused with a retryable code (REDIS_NOT_READY, OVERLOADED) is sent
 * again, 0.5 s doubling to 8 s with jitter, until it is confirmed (SPEC §6: retried,
 * never forgotten). A reconnect resubscribes every channel anyway.
 */
const RETRY_INITIAL_MS = 500
const RETRY_MAX_MS = 8000

/**
 * The bookkeeping of `subscribe` requests: who waits for which channel, which request
 * id asked for which channel (to route a refusal), and how often a channel was refused
 * with a retryable code. The channel state itself (offsets) is in Subscriptions.
 */
export class SubscribeRequests {
  readonly #options: SubscribeRequestsOptions
  readonly #waiters = new Map<string, Waiters<SubscribedInfo>>()
  /** Request id of each `subscribe` in flight → its channel. */
  readonly #inFlight = new Map<string, string>()
  /** Retryable refusals in a row, per channel (cleared on `subscribed`). */
  readonly #retries = new Map<string, number>()
  /** The retry due for each channel refused with a retryable code; one at most. */
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>()

  constructor (options: SubscribeRequestsOptions) {
    this.#options = options
  }

  /** Settled by the channel's next confirmation or refusal. */
  async wait (channel: string): Promise<SubscribedInfo> {
    let waiters = this.#waiters.get(channel)
    if (waiters === undefined) {
      waiters = new Waiters()
      this.#waiters.set(channel, waiters)
    }
    return await waiters.wait()
  }

  /** Sends a new request for `channel`; its id is remembered until answered. */
  send (channel: string): void {
    const frame = this.#options.frameOf(channel)
    if (frame instanceof Promise) void frame.then((ready) => { if (ready !== undefined) this.#write(channel, ready) })
    else this.#write(channel, frame)
  }

  #write (channel: string, frame: object): void {
    const id = `sub-${this.#options.nextRequestNumber()}`
    this.#inFlight.set(id, channel)
    this.#options.write(JSON.stringify({ ...frame, id }))
  }

  /** The answer to request `id` arrived (`subscribed`, `unsubscribed` or an error): its channel, if it was one. */
  answered (id: string | number | undefined): string | undefined {
    if (id === undefined) return undefined
    const channel = this.#inFlight.get(String(id))
    this.#inFlight.delete(String(id))
    return channel
  }

  /**
   * A new session: answers to the old socket's requests will never come, and the
   * retries due are dropped because the session resubscribes every channel itself.
   * The waiters and the retry counts stay: a channel is never forgotten (SPEC §6).
   */
  clearInFlight (): void {
    this.#inFlight.clear()
    this.#cancelRetries()
  }

  /** `subscribed` answered request `id`: the next retryable refusal of `channel` starts from the first delay. */
  accepted (id: string | number | undefined, channel: string): void {
    this.answered(id)
    this.#retries.delete(channel)
    this.#cancelRetry(channel)
  }

  confirm (info: SubscribedInfo): void {
    const waiters = this.#waiters.get(info.channel)
    this.#waiters.delete(info.channel)
    waiters?.resolveAll(info)
  }

  refuse (channel: string, error: GatewayClientError): void {
    const waiters = this.#waiters.get(channel)
    this.#waiters.delete(channel)
    waiters?.rejectAll(error)
  }

  /** Unsubscribed before confirmation: an answer still due must not settle a later subscribe of the same channel. */
  forget (channel: string, error: GatewayClientError): void {
    this.#retries.delete(channel)
    this.#cancelRetry(channel)
    for (const [id, requested] of this.#inFlight) if (requested === channel) this.#inFlight.delete(id)
    this.refuse(channel, error)
  }

  /**
   * After a retryable refusal: sends `channel` again later, if `stillWanted` then.
   * Returns the delay chosen.
   */
  retry (channel: string, stillWanted: () => boolean): number {
    const attempt = (this.#retries.get(channel) ?? 0) + 1
    this.#retries.set(channel, attempt)
    const ceiling = Math.min(RETRY_INITIAL_MS * 2 ** (attempt - 1), RETRY_MAX_MS)
    const delayMs = Math.round(ceiling / 2 + (this.#options.random ?? Math.random)() * ceiling / 2)
    this.#cancelRetry(channel)
    this.#timers.set(channel, setTimeout(() => {
      this.#timers.delete(channel)
      if (stillWanted()) this.send(channel)
    }, delayMs))
    return delayMs
  }

  /** Retries due now (for tests and debugging). */
  get retriesDue (): number {
    return this.#timers.size
  }

  /** The client stopped: every waiter hears why, and no retry is left behind. */
  refuseAll (error: GatewayClientError): void {
    for (const channel of [...this.#waiters.keys()]) this.refuse(channel, error)
    this.#inFlight.clear()
    this.#retries.clear()
    this.#cancelRetries()
  }

  #cancelRetry (channel: string): void {
    clearTimeout(this.#timers.get(channel))
    this.#timers.delete(channel)
  }

  #cancelRetries (): void {
    for (const timer of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
  }
}
