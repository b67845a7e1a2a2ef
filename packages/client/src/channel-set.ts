import type { ClientStatus } from './client-events.js'
import { GatewayClientError } from './errors.js'
import type { ClientLogger } from './logger.js'
import type { PollAnswer } from './polling.js'
import { SubscribeRequests, type SubscribedInfo } from './subscribe-requests.js'
import { Subscriptions } from './subscriptions.js'
import { parseOffset } from '../../../src/protocol/offsets.js'
import type { ErrorFrame, SubscribedFrame } from '../../../src/protocol/server-frames.js'

/** What `subscribe` accepts besides the channel. */
export interface SubscribeOptions {
  /**
   * An offset this gateway issued (`<epoch>:<seq>`): the first subscribe replays every
   * retained message after it; later resubscribes continue from the last offset seen.
   * Ignored when the channel is already subscribed.
   */
  readonly since?: string
  /**
   * Subscription token provider (SPEC §9): called before every `subscribe` frame of
   * this channel, the first one and each resubscribe after a reconnect or a retry, so
   * an expired token is never sent again. A CHANNEL_TOKEN_INVALID refusal asks it once
   * more and retries; a second refusal fails the subscription. Ignored when the
   * channel is already subscribed.
   */
  readonly token?: () => Promise<string>
}

export interface ChannelSetOptions {
  /** The client's request counter, shared with send ids. */
  readonly nextRequestNumber: () => number
  /** Writes a frame to the socket if one is open. */
  readonly write: (text: string) => void
  readonly status: () => ClientStatus
  /** The current session; a retry goes out only on the session that was refused. */
  readonly session: () => object | undefined
  readonly poller: () => { readonly running: boolean, add: (channel: string) => void, remove: (channel: string) => void }
  readonly onMessage: (channel: string, data: unknown, offset: string, from?: string) => void
  readonly onRecoveryFailed: (channel: string) => void
  readonly onSubscribed: (info: SubscribedInfo) => void
  /** A channel was refused for good (e.g. FORBIDDEN_CHANNEL). */
  readonly onRefused: (error: GatewayClientError) => void
  readonly log: (level: keyof ClientLogger, message: string, details?: Record<string, unknown>) => void
  /** Injected for tests; Math.random otherwise (retry jitter). */
  readonly random?: () => number
}

/**
 * The client's channels (SPEC §5–§6): which are wanted, from which offset, and the
 * `subscribe` requests that confirm them, over the WebSocket or a poll. A channel is
 * dropped only by `unsubscribe` or a refusal the code table calls final; one refused
 * with a retryable code (REDIS_NOT_READY, OVERLOADED) is sent again with backoff and
 * is resubscribed by every new session until the gateway confirms it.
 */
export class ChannelSet {
  readonly #options: ChannelSetOptions
  readonly #subscriptions: Subscriptions
  readonly #requests: SubscribeRequests
  readonly #tokens = new Map<string, () => Promise<string>>()
  /** Channels refused with CHANNEL_TOKEN_INVALID and asked again with a fresh token, until confirmed. */
  readonly #reauthed = new Set<string>()

  constructor (options: ChannelSetOptions) {
    this.#options = options
    this.#subscriptions = new Subscriptions({ onMessage: options.onMessage, onRecoveryFailed: options.onRecoveryFailed })
    this.#requests = new SubscribeRequests({
      nextRequestNumber: options.nextRequestNumber,
      write: options.write,
      random: options.random,
      frameOf: (channel) => this.#frameOf(channel)
    })
  }

  get channels (): string[] {
    return this.#subscriptions.channels
  }

  /** Retries of refused subscribes due now. */
  get retriesDue (): number {
    return this.#requests.retriesDue
  }

  offsetOf (channel: string): string | undefined {
    return this.#subscriptions.offsetOf(channel)
  }

  async subscribe (channel: string, options: SubscribeOptions = {}): Promise<SubscribedInfo> {
    const status = this.#options.status()
    if (this.#subscriptions.isConfirmed(channel) && (status === 'open' || status === 'polling')) {
      return { channel, offset: this.#subscriptions.offsetOf(channel) ?? '', recovered: true }
    }
    if (options.since !== undefined && parseOffset(options.since) === null && !this.#subscriptions.has(channel)) {
      throw new GatewayClientError('BAD_MESSAGE', `since is not an offset this gateway issued (<epoch>:<seq>): ${JSON.stringify(options.since)}`)
    }
    const confirmed = this.#requests.wait(channel)
    if (!this.#subscriptions.has(channel)) {
      this.#subscriptions.add(channel, options.since)
      if (options.token !== undefined) this.#tokens.set(channel, options.token)
      const poller = this.#options.poller()
      if (status === 'open') this.#requests.send(channel)
      else if (poller.running) poller.add(channel)
    }
    return await confirmed
  }

  /** True when `channel` was subscribed (the caller then tells the gateway). */
  unsubscribe (channel: string): boolean {
    if (!this.#subscriptions.has(channel)) return false
    this.#drop(channel)
    this.#requests.forget(channel, new GatewayClientError('UNSUBSCRIBED', `unsubscribed from ${channel} before it was confirmed`))
    return true
  }

  /** A new session: every channel again, each from its last offset (or its `since`). */
  resubscribeAll (): void {
    this.#requests.clearInFlight()
    for (const channel of this.#subscriptions.channels) this.#requests.send(channel)
  }

  onMessage (channel: string, offset: string, data: unknown, from?: string): void {
    this.#subscriptions.onMessage(channel, offset, data, from)
  }

  onSubscribed (frame: SubscribedFrame): void {
    const info = { channel: frame.channel, offset: frame.offset, recovered: frame.recovered === true }
    this.#requests.accepted(frame.id, info.channel)
    this.#reauthed.delete(info.channel)
    this.#subscriptions.onSubscribed(info.channel, info.offset, info.recovered)
    this.#confirm(info)
  }

  /** Also the answer to a subscribe that an unsubscribe overtook (docs/protocol.md). */
  onUnsubscribed (id: string | number | undefined): void {
    this.#requests.answered(id)
  }

  /** An error frame: false when it does not answer a subscribe of this client. */
  onErrorFrame (frame: ErrorFrame, error: GatewayClientError): boolean {
    const channel = this.#requests.answered(frame.id)
    if (channel === undefined) return false
    if (error.code === 'CHANNEL_TOKEN_INVALID' && this.#tokens.has(channel) && !this.#reauthed.has(channel)) {
      // Expired between the provider's answer and the gateway's check, say: one fresh token.
      this.#reauthed.add(channel)
      this.#requests.send(channel)
    } else if (error.action === 'retry' || error.action === 'backoff') {
      const session = this.#options.session()
      // Only on the same session: a new one resubscribes every channel by itself.
      const delayMs = this.#requests.retry(channel, () => this.#options.status() === 'open' && this.#options.session() === session && this.#subscriptions.has(channel))
      this.#options.log('info', 'subscribe refused with a retryable code; trying again', { channel, code: error.code, delayMs })
    } else {
      this.refuse(channel, error)
    }
    return true
  }

  onPollAnswer (channel: string, answer: PollAnswer): void {
    const confirming = !this.#subscriptions.isConfirmed(channel)
    this.#subscriptions.onPolled(channel, answer.messages, answer.offset, answer.recovered)
    if (confirming && this.#subscriptions.has(channel)) this.#confirm({ channel, offset: answer.offset, recovered: answer.recovered })
  }

  /** Refused for good: the channel is dropped and its callers hear why. */
  refuse (channel: string, error: GatewayClientError): void {
    this.#drop(channel)
    this.#requests.refuse(channel, error)
    this.#options.onRefused(error)
  }

  /** The client stopped: every caller waiting hears why; the channels are kept for the next connect(). */
  refuseAll (error: GatewayClientError): void {
    this.#requests.refuseAll(error)
  }

  #drop (channel: string): void {
    this.#subscriptions.remove(channel)
    this.#options.poller().remove(channel)
    this.#tokens.delete(channel)
    this.#reauthed.delete(channel)
  }

  /**
   * The next `subscribe` frame of `channel`; with a token provider, its fresh token,
   * unless the session changed or the channel was dropped while it was being fetched.
   */
  #frameOf (channel: string): object | Promise<object | undefined> {
    const token = this.#tokens.get(channel)
    if (token === undefined) return this.#subscriptions.subscribeFrame(channel)
    const session = this.#options.session()
    const current = (): boolean => this.#tokens.get(channel) === token && this.#options.session() === session && this.#options.status() === 'open'
    return token().then(
      (value) => current() ? { ...this.#subscriptions.subscribeFrame(channel), token: value } : undefined,
      (err: unknown) => {
        if (this.#tokens.get(channel) === token) this.refuse(channel, new GatewayClientError('CHANNEL_TOKEN_UNAVAILABLE', `the token provider of ${channel} failed`, { cause: err }))
        return undefined
      }
    )
  }

  #confirm (info: SubscribedInfo): void {
    this.#requests.confirm(info)
    this.#options.onSubscribed(info)
  }
}
