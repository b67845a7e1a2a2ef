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

interface PendingSend {
  readonly text: string
  readonly resolve: (ack: SendAck) => void
  readonly reject: (error: GatewayClientError) => void
}

const encoder = new TextEncoder()

function randomId (): string {
  const bytes = new Uint8Array(8)
  globalThis.crypto.getRandomValues(bytes)
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('')
}

/**
 * Acknowledged sends (SPEC §5 `send`): each keeps its id until the server's `ack`, so
 * a send lost with a socket goes out again, unchanged, on the next one, and the server
 * drops the duplicate. Bounded, so an app sending into a dead connection hears about it.
 */
export class SendQueue {
  readonly #options: SendQueueOptions
  readonly #clientId: string
  readonly #pending = new Map<string, PendingSend>()

  constructor (options: SendQueueOptions) {
    this.#options = options
    this.#clientId = options.clientId ?? randomId()
  }

  get size (): number {
    return this.#pending.size
  }

  /** Resolves on the `ack`; `open` says whether to write now or wait for the next session. */
  async send (data: unknown, open: boolean): Promise<SendAck> {
    const limit = this.#options.maxPending ?? 100
    if (this.#pending.size >= limit) {
      throw new GatewayClientError('SEND_QUEUE_FULL', `${limit} sends are waiting for an ack; wait for some before sending more`)
    }
    const id = `${this.#clientId}-${this.#options.nextRequestNumber()}`
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
    return await new Promise<SendAck>((resolve, reject) => {
      this.#pending.set(id, { text, resolve, reject })
      if (open) this.#options.write(text)
    })
  }

  ack (id: string): void {
    const pending = this.#pending.get(id)
    this.#pending.delete(id)
    pending?.resolve({ id })
  }

  /** An error frame answering `id`; false when `id` is not a pending send. */
  refuse (id: string, error: GatewayClientError): boolean {
    const pending = this.#pending.get(id)
    if (pending === undefined) return false
    // REDIS_NOT_READY and the like: keep it and try again shortly (and on every reconnect).
    if (error.action === 'retry' || error.action === 'backoff') {
      setTimeout(() => { if (this.#pending.get(id) === pending) this.#options.write(pending.text) }, this.#options.retryDelayMs ?? 1000)
      return true
    }
    this.#pending.delete(id)
    pending.reject(error)
    return true
  }

  /** A new session: every send still waiting for its ack goes out again, same id. */
  resendAll (): void {
    for (const pending of this.#pending.values()) this.#options.write(pending.text)
  }

  rejectAll (error: GatewayClientError): void {
    for (const pending of this.#pending.values()) pending.reject(error)
    this.#pending.clear()
  }
}
