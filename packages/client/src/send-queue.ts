import { GatewayClientError } from './errors.js'

export interface SendQueueOptions {
  /** Prefixes every send id, so ids stay unique across the clients of one user (random by default). */
  readonly clientId?: string
  /** The client's request counter, shared with subscribe ids. */
  readonly nextRequestNumber: () => number
  /** Writes a frame to the socket if one is open (dropped otherwise: `resendAll` covers it). */
  readonly write: (text: string) => void
  /** Unacknowledged sends kept; the next one is refused with SEND_QUEUE_FULL (default 100). */
  readonly maxPending?: number
  /** The server would close with 1009 above this (default 65536, SPEC §2). */
  readonly maxPayloadBytes?: number
  /** A send refused with a retryable code is offered again after this (default 1 s). */
  readonly retryDelayMs?: number
}

/** What `send()` resolves to: the server's `ack` (SPEC §5), which echoes the send's id. */
export interface SendAck {
  /** The id this send went out with (and was deduplicated by, if it was sent again). */
  readonly id: string
}

/** What `publish` accepts besides the channel and the data. */
export interface PublishOptions {
  /**
   * Makes the publish safe to retry (SPEC §9, honoured like `POST /v1/publish`'s):
   * with one, a publish lost with its socket is sent again on the next connection and
   * the gateway appends it once; without one, it fails with PUBLISH_UNCONFIRMED instead.
   * A refusal with a retryable code (REDIS_NOT_READY, OVERLOADED) is sent again either
   * way: it was not published.
   */
  readonly idempotencyKey?: string
}

/** What `publish()` resolves to: the `published` answer (SPEC §9), the message's offset. */
export interface PublishResult {
  readonly channel: string
  readonly offset: string
}

interface PendingRequest {
  readonly text: string
  readonly resolve: (answer: never) => void
  readonly reject: (error: GatewayClientError) => void
  /**
   * At most once: a request written to a socket that was lost before its answer is
   * failed, not sent again (an unkeyed publish may or may not have been appended).
   */
  readonly once: boolean
  /** Written to a socket and not yet answered. */
  written: boolean
}

const encoder = new TextEncoder()

function randomId (): string {
  const bytes = new Uint8Array(8)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * Requests waiting for their answer by id: acknowledged sends (SPEC §5 `send`),
 * publishes (§9) and presence queries (§11). Each keeps its id until answered, so one
 * lost with a socket goes out again, unchanged, on the next one: the server drops a
 * duplicate send by id and a duplicate publish by its idempotency key, and a presence
 * query is only a read. A publish without a key is at most once instead (`once`).
 * Bounded, so an app writing into a dead connection hears about it.
 */
export class SendQueue {
  readonly #options: SendQueueOptions
  readonly #clientId: string
  readonly #pending = new Map<string, PendingRequest>()

  constructor (options: SendQueueOptions) {
    this.#options = options
    this.#clientId = options.clientId ?? randomId()
  }

  get size (): number {
    return this.#pending.size
  }

  /** Resolves on the `ack`; `open` says whether to write now or wait for the next session. */
  async send (data: unknown, open: boolean): Promise<SendAck> {
    return await this.request({ type: 'send', data }, open)
  }

  /**
   * Writes `frame` with a fresh id (now if `open`, else on the next session) and
   * resolves with what `answer` is given for that id. `once`: see PendingRequest.
   */
  async request<Answer> (frame: Record<string, unknown>, open: boolean, once = false): Promise<Answer> {
    const limit = this.#options.maxPending ?? 100
    if (this.#pending.size >= limit) {
      throw new GatewayClientError('SEND_QUEUE_FULL', `${limit} requests are waiting for an answer`)
    }
    const id = `${this.#clientId}-${this.#options.nextRequestNumber()}`
    let text: string
    try {
      text = JSON.stringify({ type: frame.type, id, ...frame })
    } catch (err) {
      throw new GatewayClientError('BAD_MESSAGE', 'data is not JSON-serialisable', { cause: err })
    }
    const maxBytes = this.#options.maxPayloadBytes ?? 65_536
    if (encoder.encode(text).byteLength > maxBytes) {
      throw new GatewayClientError('MESSAGE_TOO_LARGE', `the frame exceeds ${maxBytes} bytes`)
    }
    return await new Promise<Answer>((resolve, reject) => {
      const pending: PendingRequest = { text, resolve: resolve as (answer: never) => void, reject, once, written: false }
      this.#pending.set(id, pending)
      if (open) this.#write(pending)
    })
  }

  ack (id: string): void {
    this.answer(id, { id })
  }

  /** The answer to request `id` (`ack`, `published`, `presence`); false when `id` is not pending. */
  answer (id: string, answer: unknown): boolean {
    const pending = this.#pending.get(id)
    this.#pending.delete(id)
    pending?.resolve(answer as never)
    return pending !== undefined
  }

  /** An error frame answering `id`; false when `id` is not a pending request. */
  refuse (id: string, error: GatewayClientError): boolean {
    const pending = this.#pending.get(id)
    if (pending === undefined) return false
    // REDIS_NOT_READY and the like: refused, so not done; keep it and try again shortly (and on every reconnect).
    if (error.action === 'retry' || error.action === 'backoff') {
      pending.written = false
      setTimeout(() => { if (this.#pending.get(id) === pending) this.#write(pending) }, this.#options.retryDelayMs ?? 1000)
      return true
    }
    this.#pending.delete(id)
    pending.reject(error)
    return true
  }

  /**
   * A new session: every request still waiting for its answer goes out again, same
   * id; one sent at most once that the lost socket carried fails with PUBLISH_UNCONFIRMED.
   */
  resendAll (): void {
    for (const [id, pending] of this.#pending) {
      if (pending.once && pending.written) {
        this.#pending.delete(id)
        pending.reject(new GatewayClientError('PUBLISH_UNCONFIRMED', 'the connection was lost before the publish was confirmed (an idempotencyKey makes a retry safe)'))
      } else {
        this.#write(pending)
      }
    }
  }

  #write (pending: PendingRequest): void {
    pending.written = true
    this.#options.write(pending.text)
  }

  rejectAll (error: GatewayClientError): void {
    for (const pending of this.#pending.values()) pending.reject(error)
    this.#pending.clear()
  }
}
