import { ChannelSet, type SubscribeOptions } from './channel-set.js'
import type { ChannelMap, ChannelName, ClientEvents, ClientStatus, PresenceInfo, SessionInfo } from './client-events.js'
import type { ConnectionStatus } from './connection-status.js'
import { asClientError, ConnectionError, GatewayClientError } from './errors.js'
import { Emitter } from './events.js'
import type { ClientLogger } from './logger.js'
import { Pause } from './pause.js'
import { Poller } from './polling.js'
import { ReconnectPolicy, type AttemptOutcome } from './reconnect-policy.js'
import { SendQueue, type PublishOptions, type PublishResult, type SendAck } from './send-queue.js'
import { fieldsOf, SocketSession } from './socket-session.js'
import type { SubscribedInfo } from './subscribe-requests.js'
import type { RealtimeClientOptions } from './realtime-client-options.js'
import { TicketManager } from './ticket-manager.js'
import { defaultPageEnvironment, watchPage } from './visibility.js'
import { Waiters } from './waiters.js'
import type { WebSocketConstructor } from './websocket.js'
import type { ServerFrame, SessionEstablishedFrame } from '../../../src/protocol/server-frames.js'

export type { ChannelMap, ChannelMessage, ChannelName, ClientEvents, ClientStatus, PresenceChange, PresenceInfo, SessionInfo } from './client-events.js'
export type { SubscribeOptions } from './channel-set.js'
export type { PublishOptions, PublishResult, SendAck } from './send-queue.js'
export type { ConnectionStatus } from './connection-status.js'
export type { RealtimeClientOptions } from './realtime-client-options.js'
export type { SubscribedInfo } from './subscribe-requests.js'

/**
 * The trust boundary of the Messages map: the SDK does not check `data` at run time,
 * the app vouches for what its channels carry. The same function comes back, so `off`
 * finds what `on` added.
 */
function untyped<Messages extends ChannelMap, Name extends keyof ClientEvents> (listener: (payload: ClientEvents<Messages>[Name]) => void): (payload: ClientEvents[Name]) => void {
  return listener as (payload: ClientEvents[Name]) => void
}

/**
 * A self-healing connection to the gateway (SPEC §6): fresh ticket per connect,
 * reconnect with full-jitter backoff, close codes read as auth vs network failures,
 * resume by offset, acknowledged sends retried with the same id, and a polling
 * fallback while the WebSocket cannot be had. This facade only wires the parts
 * (SocketSession, ReconnectPolicy, SendQueue, ChannelSet, Poller).
 *
 * `Messages` maps channel names to what their messages carry (ChannelMap): `subscribe`
 * then takes only those names and `message` events are a union by `channel`. Without
 * it, any channel and `data: unknown`.
 */
export class RealtimeClient<Messages extends ChannelMap = Record<string, unknown>> {
  readonly #options: RealtimeClientOptions
  readonly #WebSocket: WebSocketConstructor
  readonly #tickets: TicketManager
  /** Untyped inside: `Messages` is the app's word about `data`, applied where listeners are added. */
  readonly #events: Emitter<ClientEvents>
  readonly #channels: ChannelSet
  readonly #sends: SendQueue
  readonly #policy: ReconnectPolicy
  readonly #poller: Poller
  readonly #ready = new Waiters<undefined>()
  #status: ClientStatus = 'closed'
  #wanted = false
  #socket: SocketSession | undefined
  #session: SessionInfo | undefined
  #lastError: GatewayClientError | undefined
  readonly #pause = new Pause()
  #detachPage: (() => void) | undefined

  constructor (options: RealtimeClientOptions) {
    this.#options = options
    const WebSocketImpl = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket
    if (WebSocketImpl === undefined) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package in Node)')
    this.#WebSocket = WebSocketImpl
    const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis)
    this.#tickets = options.tickets ?? new TicketManager({ ...options.ticketOptions, baseUrl: options.url, getToken: options.getToken, fetch: fetchImpl })
    this.#events = new Emitter<ClientEvents>((err, event) => {
      this.#log('error', 'an event listener threw; the connection carries on', { event: String(event), error: String(err) })
    })
    // One counter for send and subscribe ids, so no two requests of a client share one.
    let requests = 0
    const nextRequestNumber = (): number => ++requests
    const write = (text: string): void => { this.#socket?.write(text) }
    this.#channels = new ChannelSet({
      nextRequestNumber,
      write,
      status: () => this.#status,
      session: () => this.#session,
      poller: () => this.#poller,
      onMessage: (channel, data, offset, from) => { this.#events.emit('message', { channel, offset, data, ...(from === undefined ? {} : { from }) }) },
      onRecoveryFailed: (channel) => { this.#events.emit('recoveryFailed', { channel }) },
      onSubscribed: (info) => { this.#events.emit('subscribed', info) },
      onRefused: (error) => { this.#events.emit('error', error) },
      log: (level, message, details) => { this.#log(level, message, details) }
    })
    this.#sends = new SendQueue({ nextRequestNumber, write, maxPending: options.maxPendingSends, maxPayloadBytes: options.maxPayloadBytes })
    this.#policy = new ReconnectPolicy({ maxAttempts: options.maxReconnectAttempts, backoff: options.backoff, probeBackoff: options.probeBackoff })
    this.#poller = new Poller({
      baseUrl: options.url,
      fetch: fetchImpl,
      getToken: options.getToken,
      timeoutMs: Math.min(options.pollTimeoutMs ?? 25_000, 30_000),
      backoff: options.backoff,
      logger: options.logger,
      positionOf: (channel) => this.#channels.offsetOf(channel),
      onAnswer: (channel, answer) => { this.#channels.onPollAnswer(channel, answer) },
      onChannelError: (channel, error) => { this.#channels.refuse(channel, error) },
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

  on<Name extends keyof ClientEvents>(event: Name, listener: (payload: ClientEvents<Messages>[Name]) => void): () => void {
    return this.#events.on(event, untyped(listener))
  }

  off<Name extends keyof ClientEvents>(event: Name, listener: (payload: ClientEvents<Messages>[Name]) => void): void {
    this.#events.off(event, untyped(listener))
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
      this.#setStatus(this.#session !== undefined ? 'reconnecting' : 'connecting')
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
    await this.#ready.wait()
  }

  /** Stops for good (until `connect()`): closes the socket with 1000 and fails what is pending. */
  close (): void {
    this.#stop(new ConnectionError('CLIENT_CLOSED', 'the client was closed'))
  }

  /**
   * Subscribes to `channel` (now, or on the next connect) and keeps it across
   * reconnects, resuming from the last offset seen; `since` sets where the first
   * subscribe starts. Resolves on `subscribed`; a refusal with a retryable code
   * (REDIS_NOT_READY, OVERLOADED) is retried with backoff, across reconnects, until it
   * is confirmed. Rejects when the gateway refuses the channel (e.g. FORBIDDEN_CHANNEL).
   */
  async subscribe (channel: ChannelName<Messages>, options?: SubscribeOptions): Promise<SubscribedInfo> {
    return await this.#channels.subscribe(channel, options)
  }

  unsubscribe (channel: ChannelName<Messages>): void {
    if (this.#channels.unsubscribe(channel) && this.#status === 'open') this.#socket?.write(JSON.stringify({ type: 'unsubscribe', channel }))
  }

  /**
   * Sends `data` to the backends (SPEC §5 `send`); resolves to the server's `ack`
   * (`{ id }`, the id it went out with). Unacknowledged sends are sent again with the
   * same id after a reconnect, and the server drops the duplicates. Refused at once
   * when the queue is full.
   */
  async send (data: unknown): Promise<SendAck> {
    return await this.#request({ type: 'send', data })
  }

  /**
   * Publishes `data` to `channel` as this user (SPEC §9): resolves to `{ channel, offset }`,
   * rejects with the gateway's code; at most once unless `idempotencyKey` is given.
   */
  async publish<Channel extends ChannelName<Messages>> (channel: Channel, data: Messages[Channel], options: PublishOptions = {}): Promise<PublishResult> {
    const frame = { type: 'publish', channel, data, idempotencyKey: options.idempotencyKey } // undefined: left out of the JSON
    return await this.#request(frame, options.idempotencyKey === undefined)
  }

  /** Who is in `channel` now (SPEC §11); queued like a send, asked again on the next socket if this one is lost. */
  async presence (channel: ChannelName<Messages>): Promise<PresenceInfo> {
    return await this.#request({ type: 'presence', channel })
  }

  /** A frame answered by id (send, publish, presence): written now if open, else on the next session. */
  async #request<Answer> (frame: Record<string, unknown>, once = false): Promise<Answer> {
    if (!this.#wanted) throw new ConnectionError('CLIENT_CLOSED', 'the client is closed; call connect() first')
    return await this.#sends.request(frame, this.#status === 'open', once)
  }

  getConnectionStatus (): ConnectionStatus {
    return {
      status: this.#status,
      connected: this.#status === 'open',
      mode: this.#poller.running ? 'polling' : 'websocket',
      reconnectAttempts: this.#policy.attempts,
      lastError: this.#lastError,
      connectionId: this.#status === 'open' ? this.#session?.connectionId : undefined,
      pendingSends: this.#sends.size
    }
  }

  async #run (): Promise<void> {
    while (this.#wanted) {
      const outcome = await this.#attempt()
      if (!this.#wanted || outcome.kind === 'stopped') return
      const decision = this.#policy.decide(outcome, this.#poller.running)
      if (decision.kind === 'fresh-ticket') continue
      // Reported before anything else happens, so `error` listeners see the attempt's own failure first.
      if (decision.failure !== undefined) this.#fail(decision.failure)
      if (decision.kind === 'stop') {
        this.#stop(decision.error)
        return
      }
      if (decision.kind === 'poll') this.#enterPolling()
      else this.#setStatus('reconnecting')
      await this.#pause.wait(this.#policy.delayOf(decision))
    }
  }

  /** One attempt: a ticket, a socket, and everything until that socket ends. */
  async #attempt (): Promise<AttemptOutcome> {
    let ticket
    try {
      ticket = await this.#tickets.getValidTicket()
    } catch (err) {
      return { kind: 'failed', error: asClientError(err) }
    }
    if (!this.#wanted) return { kind: 'stopped' }
    // Single-use: whatever happens to this socket, the ticket is spent.
    this.#tickets.markUsed(ticket)
    const socket = new SocketSession({
      ...this.#options,
      WebSocket: this.#WebSocket,
      ticket: ticket.ticket,
      onEstablished: (frame) => { this.#onEstablished(frame) },
      onFrame: (frame) => { this.#onFrame(frame) },
      log: (level, message, details) => { this.#log(level, message, details) }
    })
    this.#socket = socket
    const outcome = await socket.outcome
    if (this.#socket === socket) this.#socket = undefined
    return outcome
  }

  #onEstablished (frame: SessionEstablishedFrame): void {
    this.#session = { connectionId: frame.connectionId, userId: frame.userId, sessionId: frame.sessionId }
    const wasPolling = this.#poller.running
    this.#policy.established(wasPolling)
    if (wasPolling) this.#poller.stop()
    this.#setStatus('open')
    this.#events.emit('session', this.#session)
    // Channels first, each from its last offset; then the sends still waiting for an ack.
    this.#channels.resubscribeAll()
    this.#sends.resendAll()
    this.#ready.resolveAll(undefined)
  }

  #onFrame (frame: ServerFrame): void {
    switch (frame.type) {
      case 'message':
        this.#channels.onMessage(frame.channel, frame.offset, frame.data, frame.from)
        return
      case 'ack':
      case 'published':
      case 'presence':
        // Answers by id: `{ id }` for an ack, else the frame less its tag and id ({ channel, offset }, the presence).
        this.#sends.answer(String(frame.id), frame.type === 'ack' ? { id: String(frame.id) } : fieldsOf(frame))
        return
      case 'join':
      case 'leave': // SPEC §11: the frame less its tag is the event ({ channel, userId, info? }).
        this.#events.emit(frame.type, fieldsOf(frame))
        return
      case 'subscribed':
        this.#channels.onSubscribed(frame)
        return
      case 'error': {
        const error = new GatewayClientError(frame.code, frame.message ?? frame.code)
        if (this.#channels.onErrorFrame(frame, error)) return
        if (frame.id === undefined || !this.#sends.refuse(String(frame.id), error)) this.#log('warn', 'error frame from the gateway', { code: frame.code })
        return
      }
      case 'unsubscribed':
        this.#channels.onUnsubscribed(frame.id)
        return
      default:
        // pong, and frame types newer than this SDK.
    }
  }

  #enterPolling (): void {
    if (this.#poller.running) return
    this.#log('info', 'the WebSocket is unavailable; polling until it is back')
    this.#setStatus('polling')
    this.#poller.start(this.#channels.channels)
  }

  /** A non-terminal failure: the attempt in progress failed, the client goes on. */
  #fail (error: GatewayClientError): void {
    this.#lastError = error
    this.#log('debug', 'connection attempt failed', { code: error.code, status: error.status })
    this.#ready.rejectAll(error)
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
    this.#socket?.end({ kind: 'stopped' })
    this.#pause.wake()
    this.#ready.rejectAll(error)
    this.#sends.rejectAll(error)
    this.#channels.refuseAll(error)
    this.#setStatus('closed')
    if (wasRunning && error.code !== 'CLIENT_CLOSED') this.#events.emit('error', error)
  }

  #onPageBack (reason: 'visible' | 'online'): void {
    this.#log('debug', 'page is back; reconnecting now', { reason, status: this.#status })
    // Open: a ping checks at once that the socket survived (a dead one times out).
    if (this.#status === 'open') this.#socket?.ping()
    else this.#pause.wake()
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
