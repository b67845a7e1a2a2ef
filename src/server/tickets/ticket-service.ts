import { createHash, randomFillSync } from 'node:crypto'
import { EngineUnavailableError, type Engine, type TicketRecord } from '../engine/engine.js'
import type { GatewayMetrics, TicketRejectReason } from '../metrics/gateway-metrics.js'
import type { TicketResponse } from '../../protocol/http.js'
import { GatewayError } from '../errors.js'
import type { Revocations } from './revocations.js'

/** 32 random bytes: 256 bits from the CSPRNG, 43 base64url characters. */
const TICKET_BYTES = 32
const TICKET_PATTERN = /^[A-Za-z0-9_-]{43}$/
/**
 * The stored key outlives the ticket by this much so a late ticket is told apart
 * from an unknown one (metrics: expired vs invalid). Validity is `expiresAt`.
 */
const EXPIRED_VISIBILITY_SECONDS = 60

/**
 * CSPRNG bytes drawn 4 KiB at a time: one call into the crypto library per 128
 * tickets instead of one per ticket (the same trick as Node's randomUUID cache).
 * Every byte is handed out once.
 */
class RandomPool {
  readonly #buffer = Buffer.allocUnsafe(4096)
  #offset = this.#buffer.length

  take (size: number): Buffer {
    if (this.#offset + size > this.#buffer.length) {
      randomFillSync(this.#buffer)
      this.#offset = 0
    }
    const slice = this.#buffer.subarray(this.#offset, this.#offset + size)
    this.#offset += size
    return slice
  }
}

export interface Identity {
  readonly sub: string
  readonly sessionId: string
  readonly channels?: readonly string[]
}

export type ConsumeResult =
  | { readonly ok: true, readonly record: TicketRecord }
  | { readonly ok: false, readonly reason: TicketRejectReason }

/** Tickets are stored only as this hash (SPEC §3): a Redis dump reveals no usable ticket. */
export function hashTicket (ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url')
}

/** Mints and consumes one-time WebSocket tickets (SPEC §3, §4). */
export class TicketService {
  readonly #engine: Engine
  readonly #ttlSeconds: number
  readonly #metrics: GatewayMetrics
  readonly #revocations: Revocations
  readonly #now: () => number
  readonly #random = new RandomPool()

  constructor (options: { engine: Engine, ttlSeconds: number, metrics: GatewayMetrics, revocations: Revocations, now?: () => number }) {
    this.#engine = options.engine
    this.#ttlSeconds = options.ttlSeconds
    this.#metrics = options.metrics
    this.#revocations = options.revocations
    this.#now = options.now ?? Date.now
  }

  /**
   * Mints and stores a ticket. `admission`, when given, runs alongside the store (a
   * rate-limit check, say): if it rejects, so does `issue`, and the stored ticket is
   * never handed out. Rejects with EngineUnavailableError when the engine cannot store it,
   * and with GatewayError SESSION_REVOKED while the user or the session is banned (SPEC §3).
   */
  async issue (identity: Identity, admission?: Promise<void>): Promise<TicketResponse> {
    // Only until the bans are loaded (boot, reconnect); then the check costs no round trip.
    const loading = this.#revocations.pending()
    if (loading !== undefined) await Promise.all([loading, admission])
    if (this.#revocations.isRevoked(identity.sub, identity.sessionId)) {
      // The admission's outcome no longer matters, but its rejection must not go unhandled.
      admission?.catch(() => {})
      throw new GatewayError('SESSION_REVOKED')
    }
    const ticket = this.#random.take(TICKET_BYTES).toString('base64url')
    const issuedAt = this.#now()
    const expiresAt = issuedAt + this.#ttlSeconds * 1000
    const stored = this.#engine.storeTicket(
      hashTicket(ticket),
      { sub: identity.sub, sessionId: identity.sessionId, issuedAt, expiresAt, channels: identity.channels ?? [] },
      this.#ttlSeconds + EXPIRED_VISIBILITY_SECONDS
    )
    await Promise.all([admission, stored])
    this.#metrics.ticketsIssued.inc()
    return { ticket, expiresAt: new Date(expiresAt).toISOString(), ttlSeconds: this.#ttlSeconds }
  }

  /** Consumes a presented ticket once; never throws. */
  async consume (ticket: string | undefined): Promise<ConsumeResult> {
    const result = await this.#consume(ticket)
    if (result.ok) this.#metrics.ticketsConsumed.inc()
    else this.#metrics.ticketsRejected.inc({ reason: result.reason })
    return result
  }

  async #consume (ticket: string | undefined): Promise<ConsumeResult> {
    if (ticket === undefined || ticket === '') return { ok: false, reason: 'missing' }
    // A malformed ticket cannot exist in the store: no round trip for it.
    if (!TICKET_PATTERN.test(ticket)) return { ok: false, reason: 'invalid' }
    let record: TicketRecord | null
    try {
      // Only until the bans are loaded; a ticket is never consumed without knowing them.
      const loading = this.#revocations.pending()
      if (loading !== undefined) await loading
      record = await this.#engine.consumeTicket(hashTicket(ticket))
    } catch (err) {
      if (err instanceof EngineUnavailableError) return { ok: false, reason: 'engine_unavailable' }
      throw err
    }
    if (record === null) return { ok: false, reason: 'invalid' }
    // SPEC §3: a ticket of a banned user or session is refused whenever it was issued.
    // Issuing is refused during a ban, so any such ticket predates it or raced its
    // broadcast; comparing issue time and ban time would let the race win, and would
    // depend on the two instances' clocks agreeing.
    if (this.#revocations.isRevoked(record.sub, record.sessionId)) return { ok: false, reason: 'revoked' }
    if (record.expiresAt <= this.#now()) return { ok: false, reason: 'expired' }
    return { ok: true, record }
  }
}
