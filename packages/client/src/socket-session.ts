import { asClientError, describeUrl, safeCause } from './errors.js'
import type { ClientLogger } from './logger.js'
import type { AttemptOutcome } from './reconnect-policy.js'
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './websocket.js'
import type { ErrorFrame, ServerFrame, SessionEstablishedFrame } from '../../../src/protocol/server-frames.js'

export interface SocketSessionOptions {
  readonly WebSocket: WebSocketConstructor
  /** The gateway's HTTP origin; the WebSocket URL is derived from it. */
  readonly url: string
  /** SPEC §2 WS_PATH. */
  readonly wsPath?: string
  /** The single-use ticket this socket presents (SPEC §4). */
  readonly ticket: string
  readonly connectTimeoutMs?: number
  readonly heartbeat?: { readonly intervalMs?: number, readonly timeoutMs?: number }
  readonly onEstablished: (frame: SessionEstablishedFrame) => void
  /** Every other frame, in order. */
  readonly onFrame: (frame: ServerFrame) => void
  readonly log: (level: keyof ClientLogger, message: string, details?: Record<string, unknown>) => void
}

/** The close code this client uses for a socket it gave up on. */
const CLOSE_DEAD_SOCKET = 4000
/**
 * An abandoned attempt's work is still done by the gateway (its ticket consumed, its
 * session set up), so giving up early doubles the load exactly when an instance is
 * busiest: the avalanche benchmark saw 2,400 of 5,000 clients abandon a 10 s attempt
 * and retry. 20 s still notices a dead network well before a browser's own TCP timeout.
 */
const DEFAULT_CONNECT_TIMEOUT_MS = 20_000
const PING = '{"type":"ping"}'

function webSocketUrl (baseUrl: string, path: string): string {
  const url = new URL(path, baseUrl)
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
  return url.toString()
}

/** A frame's fields without its tag and request id: what the app is given of it. */
export function fieldsOf<Frame extends { type: string, id?: unknown }> (frame: Frame): Omit<Frame, 'type' | 'id'> {
  const fields: Partial<Frame> = { ...frame }
  delete fields.type
  delete fields.id
  return fields as Omit<Frame, 'type' | 'id'>
}

/** Only the tag is checked: the gateway's frames are typed by protocol/frames.ts, and unknown tags are ignored. */
function isServerFrame (value: unknown): value is ServerFrame {
  return typeof value === 'object' && value !== null && 'type' in value && typeof value.type === 'string'
}

/**
 * One socket attempt (SPEC §4, §6): the ticket in the URL, `session_established`
 * within the connect timeout, an app-level heartbeat (browsers cannot see protocol
 * pings) and the end, once, as an AttemptOutcome. A new attempt is a new session.
 */
export class SocketSession {
  readonly #options: SocketSessionOptions
  #socket: WebSocketLike | undefined
  #ended = false
  #established = false
  #errorFrame: ErrorFrame | undefined
  /** What the socket's `error` event carried (ws: the Error; browsers: nothing). */
  #socketError: Error | undefined
  /** The socket's URL without the ticket: all that messages and logs may show. */
  readonly #url: string
  #lastReceivedAt = Date.now()
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #heartbeat: ReturnType<typeof setInterval> | undefined
  #resolve: ((outcome: AttemptOutcome) => void) | undefined
  readonly #outcome: Promise<AttemptOutcome>

  constructor (options: SocketSessionOptions) {
    this.#options = options
    this.#url = describeUrl(webSocketUrl(options.url, options.wsPath ?? '/ws'))
    this.#outcome = new Promise((resolve) => { this.#resolve = resolve })
    this.#open()
  }

  /** Resolves once, when this attempt is over. */
  get outcome (): Promise<AttemptOutcome> {
    return this.#outcome
  }

  /** Sent only while the socket is open; frames for a closed one are dropped (they are sent again on reconnect). */
  write (text: string): void {
    if (!this.#ended && this.#socket?.readyState === OPEN) this.#socket.send(text)
  }

  /** Checks at once that the socket is alive: a dead one then times out. */
  ping (): void {
    this.write(PING)
  }

  /** Ends the attempt from this side: 1000 for `stopped`, 4000 for a socket given up on. */
  end (outcome: AttemptOutcome): void {
    if (this.#ended) return
    this.#ended = true
    clearTimeout(this.#connectTimer)
    clearInterval(this.#heartbeat)
    const socket = this.#socket
    if (socket !== undefined) {
      socket.onopen = socket.onmessage = socket.onclose = null
      // Not null: closing a socket that is still connecting makes `ws` emit an error,
      // and an EventEmitter error with no listener would be thrown at the app.
      socket.onerror = () => {}
      if (socket.readyState <= OPEN) {
        try { socket.close(outcome.kind === 'stopped' ? 1000 : CLOSE_DEAD_SOCKET) } catch { /* already closing */ }
      }
    }
    this.#resolve?.(outcome)
  }

  #open (): void {
    const url = `${webSocketUrl(this.#options.url, this.#options.wsPath ?? '/ws')}?ticket=${encodeURIComponent(this.#options.ticket)}`
    let socket: WebSocketLike
    try {
      socket = new this.#options.WebSocket(url)
    } catch (err) {
      this.end({ kind: 'failed', error: asClientError(err, url) })
      return
    }
    this.#socket = socket
    const connectTimeoutMs = this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
    this.#connectTimer = setTimeout(() => {
      this.#timedOut('CONNECT_TIMEOUT', new Error(`no session_established within ${connectTimeoutMs} ms`))
    }, connectTimeoutMs)
    socket.onmessage = (event) => { this.#receive(event.data) }
    socket.onclose = (event) => {
      const cause = this.#socketError ?? this.#errorFrame
      this.end({ kind: 'closed', code: event.code, reason: event.reason, established: this.#established, errorFrame: this.#errorFrame, url: this.#url, cause })
    }
    // A close event always follows an error event; the outcome is decided there, with this as its cause.
    socket.onerror = (event) => {
      const error = typeof event === 'object' && event !== null && 'error' in event ? event.error : undefined
      if (error instanceof Error) this.#socketError ??= safeCause(error)
    }
  }

  #receive (data: unknown): void {
    this.#lastReceivedAt = Date.now()
    const frame = this.#parse(data)
    if (frame === undefined) return
    if (frame.type === 'session_established') {
      this.#established = true
      clearTimeout(this.#connectTimer)
      this.#startHeartbeat(frame.heartbeatIntervalMs)
      this.#options.onEstablished(frame)
      return
    }
    // Kept for the close that follows: its code names the failure better than the close reason.
    if (frame.type === 'error' && frame.id === undefined) this.#errorFrame = frame
    this.#options.onFrame(frame)
  }

  #parse (data: unknown): ServerFrame | undefined {
    try {
      const frame: unknown = JSON.parse(typeof data === 'string' ? data : String(data))
      if (isServerFrame(frame)) return frame
    } catch { /* reported below */ }
    this.#options.log('warn', 'ignored a frame that is not a JSON object with a type')
    return undefined
  }

  #startHeartbeat (serverIntervalMs: number): void {
    const intervalMs = this.#options.heartbeat?.intervalMs ?? serverIntervalMs
    const deadAfterMs = intervalMs + (this.#options.heartbeat?.timeoutMs ?? 10_000)
    this.#heartbeat = setInterval(() => {
      const silentMs = Date.now() - this.#lastReceivedAt
      if (silentMs > deadAfterMs) {
        this.#options.log('warn', 'no frame from the gateway in time; reconnecting', { silentMs })
        this.#timedOut('HEARTBEAT_TIMEOUT', new Error(`no frame from the gateway for ${silentMs} ms`))
        return
      }
      this.ping()
    }, intervalMs)
  }

  #timedOut (reason: 'CONNECT_TIMEOUT' | 'HEARTBEAT_TIMEOUT', cause: Error): void {
    this.end({ kind: 'closed', code: 1006, reason, established: this.#established, url: this.#url, cause })
  }
}
