import type { WebSocket, RawData } from 'ws'
import type { Code } from '../../protocol/codes.js'
import type { ClientFrame, ServerFrame } from '../../protocol/frames.js'
import { closeCodeOf } from '../errors.js'
import { EngineOverloadedError } from '../engine/engine.js'
import type { EngineLogger } from '../engine/engine.js'
import { parseClientFrame } from './protocol.js'
import { TokenBucket } from './token-bucket.js'
import { sharedTextFrame } from './prepared-frame.js'
import { quietClose, writeFramed } from './socket-internals.js'
import type { ChannelAccess } from '../channels/channel-access.js'
import type { ConnectionMetrics, ServerCloseReason } from './connection-metrics.js'

export interface ConnectionIdentity {
  readonly connectionId: string
  readonly userId: string
  readonly sessionId: string
}

/** Handles one valid client frame; may be async. Errors are contained per connection. */
export type FrameHandler = (connection: Connection, frame: ClientFrame) => void | Promise<void>

export interface ConnectionLogger extends EngineLogger {
  debug (obj: object, msg?: string): void
  readonly level: string
  child (bindings: Record<string, unknown>): ConnectionLogger
}

export interface ConnectionOptions {
  readonly identity: ConnectionIdentity
  readonly access: ChannelAccess
  /** The JWT's `info` claim as JSON text (SPEC §11 presence). */
  readonly info?: string | undefined
  /** The app's logger; the connection's child of it is made on first use only. */
  readonly logger: ConnectionLogger
  /**
   * Bindings of the connection's child logger besides its id (the upgrade request's
   * `traceId`): kept as values so the request's own logger, and with it the request,
   * is not retained for the socket's lifetime (issue 14).
   */
  readonly logBindings?: Readonly<Record<string, string>>
  readonly messageRate: { readonly perSecond: number, readonly burst: number }
  /** Outbound bytes queued on the socket beyond which the client is a slow consumer. */
  readonly maxBufferedBytes?: number
  readonly onFrame: FrameHandler
  /** With the close code and reason the socket closed with (1006 and '' when dropped). */
  readonly onClose: (connection: Connection, code: number, reason: string) => void
  /** Frame and close counts (the app's GatewayMetrics); counted nowhere when omitted. */
  readonly metrics?: ConnectionMetrics
}

/** Counts that go nowhere, for connections built without the app's metrics (unit tests). */
function unobserved (): ConnectionMetrics {
  return {
    messagesIn: { ping: 0, subscribe: 0, unsubscribe: 0, send: 0, invalid: 0, binary: 0, publish: 0, presence: 0 },
    messagesOut: { session_established: 0, pong: 0, subscribed: 0, unsubscribed: 0, message: 0, ack: 0, error: 0, published: 0, join: 0, leave: 0, presence: 0 },
    serverClose: () => {}
  }
}

/**
 * One client's WebSocket session: frame parsing, the per-connection rate and the
 * liveness the hub's heartbeat reads. Listeners are attached in the constructor,
 * synchronously after the upgrade, so no early frame is lost. It is the channel layer's
 * ChannelSubscriber (identity, access, send); the relay keeps its subscriptions.
 */
export class Connection {
  readonly identity: ConnectionIdentity
  readonly access: ChannelAccess
  /** The JWT's `info` claim as JSON text (SPEC §11), captured in the ticket. */
  readonly info: string | undefined
  /** Heartbeats sent since the peer last proved alive. */
  missedHeartbeats = 0
  readonly #socket: WebSocket
  readonly #bucket: TokenBucket
  readonly #onFrame: FrameHandler
  readonly #maxBufferedBytes: number
  readonly #parentLogger: ConnectionLogger
  readonly #logBindings: Readonly<Record<string, string>> | undefined
  readonly #metrics: ConnectionMetrics
  readonly #onClose: ConnectionOptions['onClose']
  #logger: ConnectionLogger | undefined
  #closed = false

  /**
   * Each socket's connection, for the socket listeners below: the same three functions
   * serve every socket, so no connection holds closures of its own (issue 14).
   */
  static readonly #bySocket = new WeakMap<WebSocket, Connection>()

  static #onSocketMessage (this: WebSocket, data: RawData, isBinary: boolean): void {
    const connection = Connection.#bySocket.get(this)
    if (connection !== undefined) connection.#onMessage(data, isBinary)
  }

  static #onSocketPong (this: WebSocket): void {
    const connection = Connection.#bySocket.get(this)
    if (connection !== undefined) connection.missedHeartbeats = 0
  }

  static #onSocketClose (this: WebSocket, code: number, reason: Buffer): void {
    const connection = Connection.#bySocket.get(this)
    if (connection === undefined) return
    Connection.#bySocket.delete(this)
    connection.#closed = true
    connection.debug({ event: 'ws.closed', code }, 'connection closed')
    connection.#onClose(connection, code, reason.toString())
  }

  constructor (socket: WebSocket, options: ConnectionOptions) {
    this.#socket = socket
    this.identity = options.identity
    this.access = options.access
    this.info = options.info
    this.#parentLogger = options.logger
    this.#logBindings = options.logBindings
    this.#bucket = new TokenBucket(options.messageRate)
    this.#onFrame = options.onFrame
    this.#maxBufferedBytes = options.maxBufferedBytes ?? Number.POSITIVE_INFINITY
    this.#metrics = options.metrics ?? unobserved()
    this.#onClose = options.onClose

    quietClose(socket)
    Connection.#bySocket.set(socket, this)
    socket.on('message', Connection.#onSocketMessage)
    socket.on('pong', Connection.#onSocketPong)
    // ws emits 'close' once; the listener forgets the socket on the first.
    socket.on('close', Connection.#onSocketClose)
  }

  /** One child logger per connection, made lazily: most connections never log. */
  get logger (): ConnectionLogger {
    this.#logger ??= this.#parentLogger.child({ ...this.#logBindings, connectionId: this.identity.connectionId })
    return this.#logger
  }

  /** Debug lines are the per-connection lifecycle: skipped cheaply when not enabled. */
  debug (obj: object, msg: string): void {
    const level = this.#parentLogger.level
    if (level === 'debug' || level === 'trace') this.logger.debug(obj, msg)
  }

  get isOpen (): boolean {
    return !this.#closed && this.#socket.readyState === this.#socket.OPEN
  }

  send (frame: ServerFrame): void {
    if (!this.#writable()) return
    this.#socket.send(JSON.stringify(frame))
    this.#metrics.messagesOut[frame.type] += 1
  }

  /**
   * Sends an already serialized frame. Fan-out hands every subscriber the same text:
   * its WebSocket frame is built once (prepared-frame.ts) and the same bytes written
   * to each socket (issue 14).
   */
  sendText (text: string, type: 'message' | 'join' | 'leave' = 'message'): void {
    if (!this.#writable()) return
    if (!writeFramed(this.#socket, sharedTextFrame(text))) this.#socket.send(text)
    this.#metrics.messagesOut[type] += 1
  }

  /** Open and keeping up; a slow consumer is closed here. */
  #writable (): boolean {
    if (!this.isOpen) return false
    // A client that cannot keep up is closed (it resumes from its last offset) rather
    // than letting its queue grow without bound (SPEC §5 SLOW_CONSUMER).
    if (this.#socket.bufferedAmount > this.#maxBufferedBytes) {
      this.logger.info({ event: 'ws.slow_consumer', bufferedBytes: this.#socket.bufferedAmount }, 'slow consumer; closing')
      this.closeWith('SLOW_CONSUMER')
      return false
    }
    return true
  }

  /** Ends the connection with the close code of `code`'s row (SPEC §4–§5). */
  closeWith (code: Code & ServerCloseReason): void {
    if (this.#socket.readyState >= this.#socket.CLOSING) return
    this.#metrics.serverClose(code)
    this.#socket.close(closeCodeOf(code), code)
  }

  /** Sends a protocol-level ping; the heartbeat counts it until a pong arrives. */
  heartbeat (): void {
    // ws throws on ping() once closing; the close event will remove this connection.
    if (!this.isOpen) return
    this.missedHeartbeats += 1
    this.#socket.ping()
  }

  /** Drops the TCP connection without a close handshake (dead peers). */
  terminate (): void {
    this.#socket.terminate()
  }

  /** A peer that missed two heartbeats: counted, then dropped without a close handshake. */
  terminateDead (): void {
    if (this.#socket.readyState < this.#socket.CLOSING) this.#metrics.serverClose('HEARTBEAT_TIMEOUT')
    this.#socket.terminate()
  }

  #onMessage (data: RawData, isBinary: boolean): void {
    this.missedHeartbeats = 0
    if (!this.#bucket.take()) {
      this.logger.info({ event: 'ws.rate_limited' }, 'message rate exceeded')
      this.closeWith('RATE_LIMITED')
      return
    }
    if (isBinary) {
      this.#metrics.messagesIn.binary += 1
      this.closeWith('BINARY_NOT_SUPPORTED')
      return
    }
    const parsed = parseClientFrame(data.toString())
    if (!parsed.ok) {
      this.#metrics.messagesIn.invalid += 1
      this.send({ type: 'error', code: 'BAD_MESSAGE', message: parsed.reason, ...(parsed.id === undefined ? {} : { id: parsed.id }) })
      return
    }
    this.#metrics.messagesIn[parsed.frame.type] += 1
    this.#dispatch(parsed.frame)
  }

  /** A failing handler answers this client with an error frame and harms no one else. */
  #dispatch (frame: ClientFrame): void {
    const id = frame.id
    const fail = (err: unknown): void => {
      // Our own loop stalled (SPEC §13): a retryable answer, and not an error worth a line each.
      if (err instanceof EngineOverloadedError) {
        this.send({ type: 'error', code: 'OVERLOADED', ...(id === undefined ? {} : { id }) })
        return
      }
      this.logger.error({ event: 'ws.handler_failed', type: frame.type, err }, 'frame handler failed')
      this.send({ type: 'error', code: 'INTERNAL_ERROR', ...(id === undefined ? {} : { id }) })
    }
    try {
      const pending = this.#onFrame(this, frame)
      if (pending !== undefined) pending.catch(fail)
    } catch (err) {
      fail(err)
    }
  }
}
