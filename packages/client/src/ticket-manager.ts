import { AuthenticationError, TicketError } from './errors.js'
import { gatewayErrorOf, gatewayRequest, retryAfterMs } from './http.js'

export interface Ticket {
  readonly ticket: string
  /** Epoch milliseconds. */
  readonly expiresAt: number
}

/** Supplies the app's JWT; `forceRefresh` after the gateway refused the last one. */
export type TokenProvider = (options: { forceRefresh: boolean }) => Promise<string>

export interface TicketManagerOptions {
  /** The gateway's origin, e.g. `https://rt.example.com`. */
  readonly baseUrl: string
  readonly getToken: TokenProvider
  readonly fetch?: typeof fetch
  /** Waits after a 503 WS_TICKET_REDIS_NOT_READY (SPEC §6): 200 ms, 500 ms, 1 s, then a hard failure. */
  readonly notReadyRetryDelaysMs?: readonly number[]
  /** 429s honoured (waiting Retry-After) before giving up. */
  readonly maxRateLimitRetries?: number
  /**
   * 503 OVERLOADED / AUTH_UNAVAILABLE answers honoured (waiting the server's jittered
   * Retry-After) before giving up with a TicketError; the client then backs off and
   * reconnects, it never switches to polling for these (SPEC §6).
   */
  readonly maxUnavailableRetries?: number
  /** A ticket request that has not answered by then fails with a ConnectionError (default 15 s). */
  readonly requestTimeoutMs?: number
  /** Injected for tests; `setTimeout` otherwise. */
  readonly sleep?: (ms: number) => Promise<void>
  readonly now?: () => number
}

/** Without a usable Retry-After, a refused ticket request waits this long. */
const DEFAULT_RETRY_AFTER_MS = 1000

/**
 * Long enough for a busy instance to answer (a request given up is still served, and
 * its retry adds to the load), short enough to notice a lost connection.
 */
const DEFAULT_REQUEST_TIMEOUT_MS = 15_000

const defaultSleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Tickets this close to expiry are not handed out: the upgrade must still find them valid. */
const EXPIRY_MARGIN_MS = 2000

/**
 * Gets WebSocket tickets (SPEC §6). One request is in flight at a time and every
 * concurrent caller shares it; a ticket is single-use, so once a connection has
 * consumed it (`markUsed`) the next caller gets a fresh one. Nothing renews tickets
 * on a timer: they are connection credentials, needed only to connect.
 */
export class TicketManager {
  readonly #options: TicketManagerOptions
  readonly #fetch: typeof fetch
  readonly #sleep: (ms: number) => Promise<void>
  readonly #now: () => number
  #current: Ticket | undefined
  #inFlight: Promise<Ticket> | undefined
  #requests = 0

  constructor (options: TicketManagerOptions) {
    this.#options = options
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
    this.#sleep = options.sleep ?? defaultSleep
    this.#now = options.now ?? Date.now
  }

  /** An unused, unexpired ticket: the one held, the one being fetched, or a new one. */
  async getValidTicket (): Promise<Ticket> {
    const current = this.#current
    if (current !== undefined && current.expiresAt - EXPIRY_MARGIN_MS > this.#now()) return current
    return await this.refreshTicket()
  }

  /** A new ticket, shared with every caller asking while it is being fetched. */
  async refreshTicket (): Promise<Ticket> {
    this.#current = undefined
    this.#inFlight ??= this.#fetchTicket().finally(() => { this.#inFlight = undefined })
    return await this.#inFlight
  }

  /** A connection consumed `ticket`: it is never handed out again. */
  markUsed (ticket: Ticket): void {
    if (this.#current?.ticket === ticket.ticket) this.#current = undefined
  }

  clear (): void {
    this.#current = undefined
  }

  getDebugInfo (): { hasTicket: boolean, expiresAt?: number, inFlight: boolean, requests: number } {
    return { hasTicket: this.#current !== undefined, expiresAt: this.#current?.expiresAt, inFlight: this.#inFlight !== undefined, requests: this.#requests }
  }

  async #fetchTicket (): Promise<Ticket> {
    const notReadyDelays = this.#options.notReadyRetryDelaysMs ?? [200, 500, 1000]
    const maxRateLimitRetries = this.#options.maxRateLimitRetries ?? 3
    const maxUnavailableRetries = this.#options.maxUnavailableRetries ?? 3
    let notReadyRetries = 0
    let rateLimitRetries = 0
    let unavailableRetries = 0
    let refreshedToken = false
    let token = await this.#options.getToken({ forceRefresh: false })

    for (;;) {
      const response = await this.#post(token)
      if (response.status === 200) {
        const body = await response.json() as { ticket: string, expiresAt: string }
        const ticket = { ticket: body.ticket, expiresAt: Date.parse(body.expiresAt) }
        this.#current = ticket
        return ticket
      }
      const { code, message } = await gatewayErrorOf(response, 'ticket request')

      if (response.status === 503 && code === 'WS_TICKET_REDIS_NOT_READY') {
        const delay = notReadyDelays[notReadyRetries]
        if (delay === undefined) throw new TicketError(code, message, { status: 503 })
        notReadyRetries += 1
        await this.#sleep(delay)
        continue
      }
      if (response.status === 401) {
        if (code === 'MISSING_SESSION' || code === 'SESSION_REVOKED' || refreshedToken) throw new AuthenticationError(code, message, { status: 401 })
        refreshedToken = true
        token = await this.#options.getToken({ forceRefresh: true })
        continue
      }
      if (response.status === 429 && rateLimitRetries < maxRateLimitRetries) {
        rateLimitRetries += 1
        await this.#sleep(retryAfterMs(response) ?? DEFAULT_RETRY_AFTER_MS)
        continue
      }
      // The instance is busy or cannot reach its key set: Redis is fine, so polling would not help.
      if (response.status === 503 && (code === 'OVERLOADED' || code === 'AUTH_UNAVAILABLE') && unavailableRetries < maxUnavailableRetries) {
        unavailableRetries += 1
        await this.#sleep(retryAfterMs(response) ?? DEFAULT_RETRY_AFTER_MS)
        continue
      }
      throw new TicketError(code, message, { status: response.status })
    }
  }

  async #post (token: string): Promise<Response> {
    this.#requests += 1
    // Bounded: a request lost on a dead connection would otherwise hang every caller sharing it.
    return await gatewayRequest({
      fetch: this.#fetch,
      url: `${this.#options.baseUrl}/ws-ticket`,
      init: { method: 'POST', headers: { authorization: `Bearer ${token}` } },
      timeoutMs: this.#options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    })
  }
}
