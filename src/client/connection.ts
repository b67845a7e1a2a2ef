import { Backoff, type BackoffOptions } from './backoff.js'
import { AuthenticationError, ConnectionError, GatewayClientError, TicketError } from './errors.js'
import { Emitter } from './events.js'
import type { ClientLogger } from './logger.js'
import { Poller, type PollAnswer } from './polling.js'
import { Subscriptions } from './subscriptions.js'
import { TicketManager, type TicketManagerOptions, type TokenProvider } from './ticket-manager.js'
import { defaultPageEnvironment, watchPage, type PageEnvironment } from './visibility.js'
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './websocket.js'
import type { ErrorFrame, SessionEstablishedFrame } from '../protocol/frames.js'

export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'

export interface ChannelMessage {
  readonly channel: string
  readonly offset: string
  readonly data: unknown
}

export interface SubscribedInfo {
  readonly channel: string
  readonly offset: string
  /** False: messages were missed and cannot be replayed; refetch the state this channel feeds. */
  readonly recovered: boolean
}

export interface SessionInfo {
  readonly connectionId: string
  readonly userId: string
  readonly sessionId: string
}

export interface ClientEvents {
  status: ClientStatus
  session: SessionInfo
  message: ChannelMessage
  subscribed: SubscribedInfo
  /** A resume could not replay what was missed (`recovered:false`). */
  recoveryFailed: { readonly channel: string }
  /** Every failure, terminal or not; `getConnectionStatus().lastError` keeps the last. */
  error: GatewayClientError
}

export interface ConnectionStatus {
  readonly status: ClientStatus
  readonly connected: boolean
  readonly mode: 'websocket' | 'polling'
  /** Failed attempts since the last established session. */
  readonly reconnectAttempts: number
  readonly lastError?: GatewayClientError
  readonly connectionId?: string
  readonly pendingSends: number
}

export interface RealtimeClientOptions {
  /** The gateway's HTTP origin, e.g. `https://rt.example.com`. The WebSocket URL is derived from it. */
  readonly url: string
  /** Supplies the app's JWT; called with `forceRefresh: true` after the gateway refused one. */
  readonly getToken: TokenProvider
  /** Defaults to the global `WebSocket` (browsers); pass `ws`'s class in Node 20. */
  readonly WebSocket?: WebSocketConstructor
  readonly fetch?: typeof fetch
  /** SPEC §2 WS_PATH. */
  readonly wsPath?: string
  /** Consecutive failed reconnects before giving up with a ConnectionError (default: never give up). */
  readonly maxReconnectAttempts?: number
  /** Reconnect delays: full jitter, 1 s doubling to 16 s by default (SPEC §6). */
  readonly backoff?: BackoffOptions
  /** In polling mode, how often the WebSocket is tried again: 5 s doubling to 60 s by default. */
  readonly probeBackoff?: BackoffOptions
  /** How long `GET /v1/poll` may be held (default 25 s, at most 30 s). */
  readonly pollTimeoutMs?: number
  /**
   * App-level heartbeat (browsers cannot see protocol pings): a `ping` every
   * `intervalMs` (default: the server's heartbeatIntervalMs), and the socket is
   * declared dead when nothing at all arrived for `intervalMs + timeoutMs`.
   */
  readonly heartbeat?: { readonly intervalMs?: number, readonly timeoutMs?: number }
  /** A socket that has not reached `session_established` by then is abandoned (default 20 s). */
  readonly connectTimeoutMs?: number
  /** Unacknowledged `send`s kept for retry; the next one is refused with SEND_QUEUE_FULL (default 100). */
  readonly maxPendingSends?: number
  /** Frames larger than this are refused before sending (the server would close with 1009). Default 65536, SPEC §2. */
  readonly maxPayloadBytes?: number
  /** Where the visibility/online listener attaches; `null` attaches none. Defaults to the page's document and window. */
  readonly page?: PageEnvironment | null
  readonly logger?: ClientLogger
  /** Shares or customises ticket fetching; built from the options above otherwise. */
  readonly tickets?: TicketManager
  /** Passed to the TicketManager this client builds (e.g. the 503 retry delays). */
  readonly ticketOptions?: Omit<TicketManagerOptions, 'baseUrl' | 'getToken' | 'fetch'>
}

interface PendingSend {
  readonly text: string
  readonly resolve: () => void
  readonly reject: (error: GatewayClientError) => void
}

interface Waiter<T> {
  readonly resolve: (value: T) => void
  readonly reject: (error: GatewayClientError) => void
}

/** How one attempt ended; the run loop decides what comes next from it. */
type AttemptOutcome =
  | { readonly kind: 'ticket-failed', readonly error: GatewayClientError }
  | { readonly kind: 'closed', readonly code: number, readonly reason: string, readonly established: boolean, readonly errorFrame?: ErrorFrame }
  | { readonly kind: 'stopped' }

/** Close codes the server uses (SPEC §4–§5) and the one this client uses for a dead socket. */
const CLOSE_TICKET_REFUSED = 4401
const CLOSE_SESSION_REVOKED = 4403
const CLOSE_RATE_LIMITED = 4429
const CLOSE_DEAD_SOCKET = 4000
/** A send the server could not take yet (e.g. REDIS_NOT_READY) is offered again after this. */
const SEND_RETRY_DELAY_MS = 1000
/**
 * An abandoned attempt's work is still done by the gateway (its ticket consumed, its
 * session set up), so giving up early doubles the load exactly when an instance is
 * busiest: the avalanche benchmark saw 2,400 of 5,000 clients abandon a 10 s attempt
 * and retry. 20 s still notices a dead network well before a browser's own TCP timeout.
 */
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000
/**
 * A subscribe refused with a retryable code (REDIS_NOT_READY, OVERLOADED) is sent
 * again, 0.5 s doubling to 8 s with jitter, until it is confirmed (SPEC §6: retried,
 * never forgotten). A reconnect resubscribes every channel anyway.
 */
const SUBSCRIBE_RETRY_INITIAL_MS = 500
const SUBSCRIBE_RETRY_MAX_MS = 8000

const encoder = new TextEncoder()

function randomId (): string {
  const bytes = new Uint8Array(8)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

function asClientError (err: unknown): GatewayClientError {
  if (err instanceof GatewayClientError) return err
  return new ConnectionError('NETWORK_ERROR', err instanceof Error ? err.message : String(err), { cause: err })
}

function webSocketUrl (baseUrl: string, path: string): string {
  const url = new URL(path, baseUrl)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.toString()
}

/**
 * A self-healing connection to the gateway (SPEC §6): fresh ticket per connect,
 * reconnect with full-jitter backoff, close codes read as auth vs network failures,
 * resume by offset, acknowledged sends retried with the same id, and a polling
 * fallback while the WebSocket cannot be had.
 */
export class RealtimeClient {
  readonly #options: RealtimeClientOptions
  readonly #WebSocket: WebSocketConstructor
  readonly #fetch: typeof fetch
  readonly #tickets: TicketManager
  readonly #events: Emitter<ClientEvents>
  readonly #subscriptions: Subscriptions
  readonly #backoff: Backoff
  readonly #probeBackoff: Backoff
  readonly #poller: Poller
  readonly #clientId = randomId()
  readonly #pendingSends = new Map<string, PendingSend>()
  readonly #subscribeWaiters = new Map<string, Array<Waiter<SubscribedInfo>>>()
  /** Request id of each `subscribe` in flight → its channel, to route a refusal. */
  readonly #subscribeRequests = new Map<string, string>()
  /** Retryable refusals in a row, per channel (cleared on `subscribed`). */
  readonly #subscribeRetries = new Map<string, number>()
  #readyWaiters: Array<Waiter<void>> = []
  #status: ClientStatus = 'closed'
  #wanted = false
  #everOpened = false
  #socket: WebSocketLike | undefined
  #session: SessionInfo | undefined
  #lastError: GatewayClientError | undefined
  #requestCounter = 0
  #wake: (() => void) | undefined
  #detachPage: (() => void) | undefined
  #endAttempt: ((outcome: AttemptOutcome) => void) | undefined

  constructor (options: RealtimeClientOptions) {
    this.#options = options
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WebSocketImpl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package in Node)')
    this.#WebSocket = WebSocketImpl
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
    this.#tickets = options.tickets ?? new TicketManager({ ...options.ticketOptions, baseUrl: options.url, getToken: options.getToken, fetch: this.#fetch })
    this.#events = new Emitter<ClientEvents>((err, event) => {
      this.#log('error', 'an event listener threw; the connection carries on', { event: String(event), error: String(err) })
    })
    this.#subscriptions = new Subscriptions({
      onMessage: (channel, data, offset) => { this.#events.emit('message', { channel, offset, data }) },
      onRecoveryFailed: (channel) => { this.#events.emit('recoveryFailed', { channel }) }
    })
    this.#backoff = new Backoff(options.backoff)
    this.#probeBackoff = new Backoff({ initialMs: 5000, maxMs: 60_000, ...options.probeBackoff })
    this.#poller = new Poller({
      baseUrl: options.url,
      fetch: this.#fetch,
      getToken: options.getToken,
      timeoutMs: Math.min(options.pollTimeoutMs ?? 25_000, 30_000),
      backoff: options.backoff,
      logger: options.logger,
      positionOf: (channel) => this.#subscriptions.offsetOf(channel),
      onAnswer: (channel, answer) => { this.#onPollAnswer(channel, answer) },
      onChannelError: (channel, error) => { this.#refuseSubscription(channel, error) },
      onAuthenticationError: (error) => { this.#stop(error) }
    })
  }

  get status (): ClientStatus {
    return this.#status
  }

  /** The ticket manager in use (its debug info tells how many ticket requests were made). */
  get tickets (): TicketManager {
    return this.#tickets
  }

  on<Name extends keyof ClientEvents>(event: Name, listener: (payload: ClientEvents[Name]) => void): () => void {
    return this.#events.on(event, listener)
  }

  off<Name extends keyof ClientEvents>(event: Name, listener: (payload: ClientEvents[Name]) => void): void {
    this.#events.off(event, listener)
  }

  /**
   * Starts the client and resolves on `session_established`. Rejects with the typed
   * error of the attempt when it fails; unless that error is terminal
   * (AuthenticationError, a revoked session, max attempts), the client keeps healing
   * in the background: watch `status` or call `ready()` again.
   */
  async connect (): Promise<void> {
    if (!this.#wanted) {
      this.#wanted = true
      this.#lastError = undefined
      this.#setStatus(this.#everOpened ? 'reconnecting' : 'connecting')
      if (this.#options.page !== null) {
        this.#detachPage = watchPage(this.#options.page ?? defaultPageEnvironment(), (reason) => { this.#onPageBack(reason) })
      }
      void this.#run()
    }
    await this.ready()
  }

  /** Resolves when the connection is open; rejects with the error of the attempt in progress if it fails. */
  async ready (): Promise<void> {
    if (this.#status === 'open') return
    if (!this.#wanted) throw this.#lastError ?? new ConnectionError('CLIENT_CLOSED', 'the client is closed; call connect()')
    await new Promise<void>((resolve, reject) => { this.#readyWaiters.push({ resolve, reject }) })
  }

  /** Stops for good (until `connect()`): closes the socket with 1000 and fails what is pending. */
  close (): void {
    this.#stop(new ConnectionError('CLIENT_CLOSED', 'the client was closed'))
  }

  /**
   * Subscribes to `channel` (now, or on the next connect) and keeps it across
   * reconnects, resuming from the last offset seen. Resolves on `subscribed`;
   * rejects when the gateway refuses the channel (e.g. FORBIDDEN_CHANNEL).
   */
  async subscribe (channel: string): Promise<SubscribedInfo> {
    const known = this.#subscriptions.offsetOf(channel)
    if (known !== undefined && (this.#status === 'open' || this.#status === 'polling')) {
      return { channel, offset: known, recovered: true }
    }
    const confirmed = new Promise<SubscribedInfo>((resolve, reject) => {
      const waiters = this.#subscribeWaiters.get(channel) ?? []
      waiters.push({ resolve, reject })
      this.#subscribeWaiters.set(channel, waiters)
    })
    if (!this.#subscriptions.has(channel)) {
      this.#subscriptions.add(channel)
      if (this.#status === 'open') this.#sendSubscribe(channel)
      else if (this.#poller.running) this.#poller.add(channel)
    }
    return await confirmed
  }

  unsubscribe (channel: string): void {
    if (!this.#subscriptions.has(channel)) return
    this.#subscriptions.remove(channel)
    this.#poller.remove(channel)
    this.#subscribeRetries.delete(channel)
    // An answer still due for an earlier subscribe must not settle a later one of the same channel.
    for (const [id, requested] of this.#subscribeRequests) if (requested === channel) this.#subscribeRequests.delete(id)
    this.#settleSubscribe(channel, new GatewayClientError('UNSUBSCRIBED', `unsubscribed from ${channel} before it was confirmed`))
    if (this.#status === 'open') this.#write(JSON.stringify({ type: 'unsubscribe', channel }))
  }

  /**
   * Sends `data` to the backends (SPEC §5 `send`); resolves on the server's `ack`.
   * Unacknowledged sends are sent again with the same id after a reconnect, and the
   * server drops the duplicates. Refused at once when the queue is full.
   */
  async send (data: unknown): Promise<void> {
    if (!this.#wanted) throw new ConnectionError('CLIENT_CLOSED', 'the client is closed; call connect() first')
    const limit = this.#options.maxPendingSends ?? 100
    if (this.#pendingSends.size >= limit) {
      throw new GatewayClientError('SEND_QUEUE_FULL', `${limit} sends are waiting for an ack; wait for some before sending more`)
    }
    this.#requestCounter += 1
    const id = `${this.#clientId}-${this.#requestCounter}`
    let text: string
    try {
      text = JSON.stringify({ type: 'send', id, data })
    } catch (err) {
      throw new GatewayClientError('BAD_MESSAGE', 'data is not JSON-serialisable', { cause: err })
    }
    const maxBytes = this.#options.maxPayloadBytes ?? 65_536
    if (encoder.encode(text).byteLength > maxBytes) {
      throw new GatewayClientError('MESSAGE_TOO_LARGE', `the frame exceeds ${maxBytes} bytes`)
    }
    await new Promise<void>((resolve, reject) => {
      this.#pendingSends.set(id, { text, resolve, reject })
      if (this.#status === 'open') this.#write(text)
    })
  }

  getConnectionStatus (): ConnectionStatus {
    return {
      status: this.#status,
      connected: this.#status === 'open',
      mode: this.#poller.running ? 'polling' : 'websocket',
      reconnectAttempts: this.#backoff.attempts,
      lastError: this.#lastError,
      connectionId: this.#status === 'open' ? this.#session?.connectionId : undefined,
      pendingSends: this.#pendingSends.size
    }
  }

  // --- the connect loop -------------------------------------------------------

  async #run (): Promise<void> {
    let ticketRetried = false
    while (this.#wanted) {
      const outcome = await this.#attempt()
      if (!this.#wanted || outcome.kind === 'stopped') return
      if (outcome.kind === 'closed' && outcome.established) ticketRetried = false

      const error = this.#errorOf(outcome)
      if (error instanceof AuthenticationError) {
        this.#stop(error)
        return
      }
      // SPEC §6: a refused ticket gets one fresh ticket at once, then AuthenticationError.
      if (outcome.kind === 'closed' && outcome.code === CLOSE_TICKET_REFUSED) {
        if (ticketRetried) {
          this.#stop(new AuthenticationError(error.code, 'the gateway refused a fresh ticket', { status: CLOSE_TICKET_REFUSED }))
          return
        }
        // The refused ticket was marked used when its socket opened: the retry fetches a new one.
        ticketRetried = true
        continue
      }
      this.#fail(error)

      // The ticket service cannot store tickets: poll until the WebSocket works again.
      if (this.#poller.running || (error instanceof TicketError && error.code === 'WS_TICKET_REDIS_NOT_READY')) {
        this.#enterPolling()
        await this.#pause(this.#probeBackoff.next())
        continue
      }
      const attempts = this.#options.maxReconnectAttempts ?? Number.POSITIVE_INFINITY
      if (this.#backoff.attempts >= attempts) {
        this.#stop(new ConnectionError('RECONNECT_FAILED', `gave up after ${attempts} failed attempts`, { cause: error }))
        return
      }
      this.#setStatus('reconnecting')
      const delay = this.#backoff.next()
      // 4429: the server asked for less; never come straight back.
      await this.#pause(outcome.kind === 'closed' && outcome.code === CLOSE_RATE_LIMITED ? Math.max(delay, this.#options.backoff?.initialMs ?? 1000) : delay)
    }
  }

  /** One attempt: a ticket, a socket, and everything until that socket ends. */
  async #attempt (): Promise<AttemptOutcome> {
    let ticket
    try {
      ticket = await this.#tickets.getValidTicket()
    } catch (err) {
      return { kind: 'ticket-failed', error: asClientError(err) }
    }
    if (!this.#wanted) return { kind: 'stopped' }
    // Single-use: whatever happens to this socket, the ticket is spent.
    this.#tickets.markUsed(ticket)

    return await new Promise<AttemptOutcome>((resolve) => {
      const url = `${webSocketUrl(this.#options.url, this.#options.wsPath ?? '/ws')}?ticket=${encodeURIComponent(ticket.ticket)}`
      let socket: WebSocketLike
      try {
        socket = new this.#WebSocket(url)
      } catch (err) {
        resolve({ kind: 'ticket-failed', error: asClientError(err) })
        return
      }
      this.#socket = socket
      let established = false
      let errorFrame: ErrorFrame | undefined
      let lastReceivedAt = Date.now()
      let heartbeat: ReturnType<typeof setInterval> | undefined
      const connectTimer = setTimeout(() => {
        end({ kind: 'closed', code: 1006, reason: 'CONNECT_TIMEOUT', established })
      }, this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS)

      const end = (outcome: AttemptOutcome): void => {
        if (this.#endAttempt !== end) return
        this.#endAttempt = undefined
        clearTimeout(connectTimer)
        clearInterval(heartbeat)
        socket.onopen = socket.onmessage = socket.onclose = null
        // Not null: closing a socket that is still connecting makes `ws` emit an error,
        // and an EventEmitter error with no listener would be thrown at the app.
        socket.onerror = () => {}
        if (socket.readyState <= OPEN) {
          try { socket.close(outcome.kind === 'stopped' ? 1000 : CLOSE_DEAD_SOCKET) } catch { /* already closing */ }
        }
        if (this.#socket === socket) this.#socket = undefined
        resolve(outcome)
      }
      this.#endAttempt = end

      const startHeartbeat = (serverIntervalMs: number): void => {
        const intervalMs = this.#options.heartbeat?.intervalMs ?? serverIntervalMs
        const deadAfterMs = intervalMs + (this.#options.heartbeat?.timeoutMs ?? 10_000)
        heartbeat = setInterval(() => {
          if (Date.now() - lastReceivedAt > deadAfterMs) {
            this.#log('warn', 'no frame from the gateway in time; reconnecting', { silentMs: Date.now() - lastReceivedAt })
            end({ kind: 'closed', code: 1006, reason: 'HEARTBEAT_TIMEOUT', established })
            return
          }
          this.#write('{"type":"ping"}')
        }, intervalMs)
      }

      socket.onmessage = (event) => {
        lastReceivedAt = Date.now()
        const frame = this.#parse(event.data)
        if (frame === undefined) return
        if (frame.type === 'session_established') {
          established = true
          clearTimeout(connectTimer)
          startHeartbeat((frame as unknown as SessionEstablishedFrame).heartbeatIntervalMs)
          this.#onEstablished(frame as unknown as SessionEstablishedFrame)
          return
        }
        if (frame.type === 'error' && frame.id === undefined) errorFrame = frame as unknown as ErrorFrame
        this.#onFrame(frame)
      }
      socket.onclose = (event) => {
        end({ kind: 'closed', code: event.code, reason: event.reason, established, errorFrame })
      }
      // A close event always follows an error event; the outcome is decided there.
      socket.onerror = () => {}
    })
  }

  #errorOf (outcome: Exclude<AttemptOutcome, { kind: 'stopped' }>): GatewayClientError {
    if (outcome.kind === 'ticket-failed') return outcome.error
    const code = outcome.errorFrame?.code ?? (outcome.reason !== '' ? outcome.reason : `CLOSE_${outcome.code}`)
    const message = `the connection closed with ${outcome.code}${outcome.reason !== '' ? ` (${outcome.reason})` : ''}`
    if (outcome.code === CLOSE_SESSION_REVOKED) return new AuthenticationError(code, message, { status: outcome.code })
    return new ConnectionError(code, message, { status: outcome.code })
  }

  // --- frames -----------------------------------------------------------------

  #parse (data: unknown): ({ type: string, id?: string | number } & Record<string, unknown>) | undefined {
    try {
      const frame = JSON.parse(typeof data === 'string' ? data : String(data)) as unknown
      if (typeof frame === 'object' && frame !== null && typeof (frame as { type?: unknown }).type === 'string') {
        return frame as { type: string } & Record<string, unknown>
      }
    } catch { /* reported below */ }
    this.#log('warn', 'ignored a frame that is not a JSON object with a type')
    return undefined
  }

  #onEstablished (frame: SessionEstablishedFrame): void {
    this.#session = { connectionId: frame.connectionId, userId: frame.userId, sessionId: frame.sessionId }
    this.#everOpened = true
    this.#backoff.reset()
    if (this.#poller.running) {
      this.#poller.stop()
      this.#probeBackoff.reset()
    }
    this.#subscribeRequests.clear()
    this.#setStatus('open')
    this.#events.emit('session', this.#session)
    // Channels first, each from its last offset; then the sends still waiting for an ack.
    for (const channel of this.#subscriptions.channels) this.#sendSubscribe(channel)
    for (const pending of this.#pendingSends.values()) this.#write(pending.text)
    const waiters = this.#readyWaiters
    this.#readyWaiters = []
    for (const waiter of waiters) waiter.resolve()
  }

  #onFrame (frame: { type: string, id?: string | number } & Record<string, unknown>): void {
    switch (frame.type) {
      case 'message':
        this.#subscriptions.onMessage(String(frame.channel), String(frame.offset), frame.data)
        return
      case 'subscribed': {
        const channel = String(frame.channel)
        if (frame.id !== undefined) this.#subscribeRequests.delete(String(frame.id))
        this.#subscribeRetries.delete(channel)
        this.#subscriptions.onSubscribed(channel, String(frame.offset), frame.recovered === true)
        this.#confirmSubscription({ channel, offset: String(frame.offset), recovered: frame.recovered === true })
        return
      }
      case 'ack': {
        const id = String(frame.id)
        const pending = this.#pendingSends.get(id)
        this.#pendingSends.delete(id)
        pending?.resolve()
        return
      }
      case 'error':
        this.#onErrorFrame(frame as unknown as ErrorFrame)
        return
      case 'unsubscribed':
        // Also the answer to a subscribe that an unsubscribe overtook (docs/protocol.md).
        if (frame.id !== undefined) this.#subscribeRequests.delete(String(frame.id))
        return
      default:
        // pong, and frame types newer than this SDK.
    }
  }

  #onErrorFrame (frame: ErrorFrame): void {
    const id = frame.id === undefined ? undefined : String(frame.id)
    const error = new GatewayClientError(frame.code, frame.message ?? frame.code)
    const channel = id === undefined ? undefined : this.#subscribeRequests.get(id)
    if (id !== undefined && channel !== undefined) {
      this.#subscribeRequests.delete(id)
      if (error.action === 'retry' || error.action === 'backoff') this.#retrySubscribe(channel, error)
      else this.#refuseSubscription(channel, error)
      return
    }
    const pending = id === undefined ? undefined : this.#pendingSends.get(id)
    if (id !== undefined && pending !== undefined) {
      // REDIS_NOT_READY and the like: keep it and try again shortly (and on every reconnect).
      if (error.action === 'retry' || error.action === 'backoff') {
        setTimeout(() => { if (this.#pendingSends.get(id) === pending) this.#write(pending.text) }, SEND_RETRY_DELAY_MS)
        return
      }
      this.#pendingSends.delete(id)
      pending.reject(error)
      return
    }
    this.#log('warn', 'error frame from the gateway', { code: frame.code })
  }

  #retrySubscribe (channel: string, error: GatewayClientError): void {
    const attempt = (this.#subscribeRetries.get(channel) ?? 0) + 1
    this.#subscribeRetries.set(channel, attempt)
    const ceiling = Math.min(SUBSCRIBE_RETRY_INITIAL_MS * 2 ** (attempt - 1), SUBSCRIBE_RETRY_MAX_MS)
    const delayMs = Math.round(ceiling / 2 + Math.random() * ceiling / 2)
    this.#log('info', 'subscribe refused with a retryable code; trying again', { channel, code: error.code, delayMs })
    const session = this.#session
    setTimeout(() => {
      // Only on the same socket: a new session resubscribes every channel by itself.
      if (this.#status === 'open' && this.#session === session && this.#subscriptions.has(channel)) this.#sendSubscribe(channel)
    }, delayMs)
  }

  #sendSubscribe (channel: string): void {
    this.#requestCounter += 1
    const id = `sub-${this.#requestCounter}`
    this.#subscribeRequests.set(id, channel)
    this.#write(JSON.stringify({ ...this.#subscriptions.subscribeFrame(channel), id }))
  }

  #write (text: string): void {
    if (this.#socket?.readyState === OPEN) this.#socket.send(text)
  }

  // --- subscriptions ------------------------------------------------------------

  #confirmSubscription (info: SubscribedInfo): void {
    const waiters = this.#subscribeWaiters.get(info.channel)
    this.#subscribeWaiters.delete(info.channel)
    for (const waiter of waiters ?? []) waiter.resolve(info)
    this.#events.emit('subscribed', info)
  }

  #refuseSubscription (channel: string, error: GatewayClientError): void {
    this.#subscriptions.remove(channel)
    this.#poller.remove(channel)
    this.#settleSubscribe(channel, error)
    this.#events.emit('error', error)
  }

  #settleSubscribe (channel: string, error: GatewayClientError): void {
    const waiters = this.#subscribeWaiters.get(channel)
    this.#subscribeWaiters.delete(channel)
    for (const waiter of waiters ?? []) waiter.reject(error)
  }

  // --- polling mode -------------------------------------------------------------

  #enterPolling (): void {
    if (this.#poller.running) return
    this.#log('info', 'the WebSocket is unavailable; polling until it is back')
    this.#setStatus('polling')
    this.#poller.start(this.#subscriptions.channels)
  }

  #onPollAnswer (channel: string, answer: PollAnswer): void {
    const confirming = this.#subscriptions.offsetOf(channel) === undefined
    this.#subscriptions.onPolled(channel, answer.messages, answer.offset, answer.recovered)
    if (confirming) this.#confirmSubscription({ channel, offset: answer.offset, recovered: answer.recovered })
  }

  // --- state --------------------------------------------------------------------

  /** A non-terminal failure: the attempt in progress failed, the client goes on. */
  #fail (error: GatewayClientError): void {
    this.#lastError = error
    this.#log('debug', 'connection attempt failed', { code: error.code, status: error.status })
    const waiters = this.#readyWaiters
    this.#readyWaiters = []
    for (const waiter of waiters) waiter.reject(error)
    this.#events.emit('error', error)
  }

  /** Terminal: nothing more is attempted until `connect()`. */
  #stop (error: GatewayClientError): void {
    const wasRunning = this.#wanted
    this.#wanted = false
    this.#lastError = error
    this.#detachPage?.()
    this.#detachPage = undefined
    this.#poller.stop()
    this.#endAttempt?.({ kind: 'stopped' })
    this.#wake?.()
    for (const waiter of this.#readyWaiters) waiter.reject(error)
    this.#readyWaiters = []
    for (const pending of this.#pendingSends.values()) pending.reject(error)
    this.#pendingSends.clear()
    for (const channel of [...this.#subscribeWaiters.keys()]) this.#settleSubscribe(channel, error)
    this.#subscribeRequests.clear()
    this.#setStatus('closed')
    if (wasRunning && error.code !== 'CLIENT_CLOSED') this.#events.emit('error', error)
  }

  /** Waits `ms`, or less when the page comes back or the client is closed. */
  async #pause (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, ms)
      function finish (): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = finish
    })
    this.#wake = undefined
  }

  #onPageBack (reason: 'visible' | 'online'): void {
    this.#log('debug', 'page is back; reconnecting now', { reason, status: this.#status })
    // Open: a ping checks at once that the socket survived (a dead one times out).
    if (this.#status === 'open') this.#write('{"type":"ping"}')
    else this.#wake?.()
  }

  #setStatus (status: ClientStatus): void {
    if (this.#status === status) return
    this.#status = status
    this.#log('debug', 'status', { status })
    this.#events.emit('status', status)
  }

  #log (level: keyof ClientLogger, message: string, details?: Record<string, unknown>): void {
    this.#options.logger?.[level]?.(`[realtime-gateway] ${message}`, details)
  }
}
