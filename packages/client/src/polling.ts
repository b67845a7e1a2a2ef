import { Backoff, type BackoffOptions } from './backoff.js'
import { AuthenticationError, GatewayClientError } from './errors.js'
import { gatewayErrorOf, gatewayRequest, retryAfterMs } from './http.js'
import type { ClientLogger } from './logger.js'
import type { TokenProvider } from './ticket-manager.js'

/** A `GET /v1/poll` answer (SPEC §3). */
export interface PollAnswer {
  readonly messages: ReadonlyArray<{ channel: string, offset: string, data: unknown, from?: string }>
  readonly offset: string
  readonly recovered: boolean
}

export interface PollerOptions {
  readonly baseUrl: string
  readonly fetch: typeof fetch
  readonly getToken: TokenProvider
  /** How long the server may hold each request (≤ 30000, SPEC §3). */
  readonly timeoutMs: number
  /** Waits after a failed poll; full jitter like the socket's reconnects. */
  readonly backoff?: BackoffOptions
  /** The position to poll from: the client's last offset on the channel. */
  readonly positionOf: (channel: string) => string | undefined
  readonly onAnswer: (channel: string, answer: PollAnswer) => void
  /** The channel was refused (403 FORBIDDEN_CHANNEL): polling it stops. */
  readonly onChannelError: (channel: string, error: GatewayClientError) => void
  /** A fresh JWT was refused too: polling stops altogether. */
  readonly onAuthenticationError: (error: AuthenticationError) => void
  readonly logger?: ClientLogger
}

interface ChannelLoop { readonly abort: AbortController }

/** How much longer than the requested hold a poll may take before it counts as lost. */
const POLL_MARGIN_MS = 10_000

/**
 * Polling mode (SPEC §6): while the WebSocket cannot be had, each subscribed channel
 * is long-polled over `GET /v1/poll` from its last offset, one request in flight per
 * channel. Stateless on the server, so any instance answers.
 */
export class Poller {
  readonly #options: PollerOptions
  readonly #loops = new Map<string, ChannelLoop>()
  #running = false

  constructor (options: PollerOptions) {
    this.#options = options
  }

  get running (): boolean {
    return this.#running
  }

  start (channels: Iterable<string>): void {
    this.#running = true
    for (const channel of channels) this.add(channel)
  }

  add (channel: string): void {
    if (!this.#running || this.#loops.has(channel)) return
    const loop = { abort: new AbortController() }
    this.#loops.set(channel, loop)
    void this.#poll(channel, loop)
  }

  remove (channel: string): void {
    this.#loops.get(channel)?.abort.abort()
    this.#loops.delete(channel)
  }

  stop (): void {
    this.#running = false
    for (const channel of [...this.#loops.keys()]) this.remove(channel)
  }

  async #poll (channel: string, loop: ChannelLoop): Promise<void> {
    const backoff = new Backoff(this.#options.backoff)
    const active = (): boolean => this.#loops.get(channel) === loop && !loop.abort.signal.aborted
    let forceRefresh = false
    while (active()) {
      let retryAfter: number | undefined
      try {
        const response = await this.#request(channel, forceRefresh, loop.abort.signal)
        if (!active()) return
        if (response.status === 200) {
          const answer = await response.json() as PollAnswer
          if (!active()) return
          forceRefresh = false
          backoff.reset()
          this.#options.onAnswer(channel, answer)
          continue
        }
        const { code, message } = await gatewayErrorOf(response, 'poll')
        const error = new GatewayClientError(code, message, { status: response.status })
        if (response.status === 401) {
          if (forceRefresh || code === 'MISSING_SESSION') {
            this.stop()
            this.#options.onAuthenticationError(new AuthenticationError(code, error.message, { status: 401 }))
            return
          }
          forceRefresh = true
          continue
        }
        if (response.status === 403 || response.status === 400) {
          this.remove(channel)
          this.#options.onChannelError(channel, error)
          return
        }
        retryAfter = retryAfterMs(response)
        this.#options.logger?.debug?.('poll refused; retrying', { channel, status: response.status, code })
      } catch (err) {
        if (!active()) return
        this.#options.logger?.debug?.('poll failed; retrying', { channel, error: String(err) })
      }
      await sleep(Math.max(backoff.next(), retryAfter ?? 0), loop.abort.signal)
    }
  }

  async #request (channel: string, forceRefresh: boolean, signal: AbortSignal): Promise<Response> {
    const token = await this.#options.getToken({ forceRefresh })
    const query = new URLSearchParams({ channel, timeoutMs: String(this.#options.timeoutMs) })
    const since = this.#options.positionOf(channel)
    if (since !== undefined) query.set('since', since)
    return await gatewayRequest({
      fetch: this.#options.fetch,
      url: `${this.#options.baseUrl}/v1/poll?${query.toString()}`,
      init: { headers: { authorization: `Bearer ${token}` } },
      // The server answers within timeoutMs; past that plus a margin the connection is dead.
      timeoutMs: this.#options.timeoutMs + POLL_MARGIN_MS,
      signal
    })
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
async function sleep (ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return
  await new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal.addEventListener('abort', done)
  })
}
