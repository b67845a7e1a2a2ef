import { createHash, randomFillSync } from 'node:crypto'
import { EngineUnavailableError, type CounterHit, type Engine, type TicketRecord } from '../engine/engine.js'
import type { Code } from '../../protocol/codes.js'
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
  /** The JWT's `publish` patterns (SPEC §9). */
  readonly publish?: readonly string[]
  /** The JWT's `info` claim as JSON text (SPEC §11), at most 1 KiB. */
  readonly info?: string
}

/**
 * Why a ticket was refused. Finer than its code, which is what the client sees:
 * an expired ticket and an unknown one both close 4401 WS_TICKET_INVALID, while
 * operators (logs, rtgw_tickets_rejected_total) need them apart.
 * `revoked`: the ticket's user or session is banned (SPEC §3 /v1/disconnect with revokeSeconds).
 */
export type TicketRejectReason = 'missing' | 'invalid' | 'expired' | 'engine_unavailable' | 'revoked'

/** The code each refusal is answered with (SPEC §4: 4401, 4403 or 1013). */
const REJECT_CODES = {
  missing: 'WS_TICKET_MISSING',
  invalid: 'WS_TICKET_INVALID',
  expired: 'WS_TICKET_INVALID',
  engine_unavailable: 'WS_TICKET_REDIS_NOT_READY',
  revoked: 'SESSION_REVOKED'
} as const satisfies Record<TicketRejectReason, Code>

/** A refusal: `code` is what the client is told, `reason` what operators are told. */
export interface TicketRejection {
  readonly ok: false
  readonly code: (typeof REJECT_CODES)[TicketRejectReason]
  readonly reason: TicketRejectReason
}

export type ConsumeResult = { readonly ok: true, readonly record: TicketRecord } | TicketRejection

/** What the ticket service counts (the app's GatewayMetrics). */
export interface TicketMetrics {
  ticketIssued (): void
  ticketConsumed (): void
  ticketRejected (reason: TicketRejectReason): void
}

function rejected (reason: TicketRejectReason): TicketRejection {
  return { ok: false, code: REJECT_CODES[reason], reason }
}

/**
 * A per-user limit counted with the ticket's store, in the same round trip
 * (Engine.storeTicketCounted): `admit` throws when the hit is past the limit.
 */
export interface TicketQuota {
  readonly counterKey: string
  readonly windowMs: number
  readonly admit: (hit: CounterHit) => void
}

/** Tickets are stored only as this hash (SPEC §3): a Redis dump reveals no usable ticket. */
export function hashTicket (ticket: string): string {
  return createHash('sha256').update(ticket).digest('base64url')
}

/** Mints and consumes one-time WebSocket tickets (SPEC §3, §4). */
export class TicketService {
  readonly #engine: Engine
  readonly #ttlSeconds: number
  readonly #metrics: TicketMetrics
  readonly #revocations: Revocations
  readonly #now: () => number
  readonly #random = new RandomPool()

  constructor (options: { engine: Engine, ttlSeconds: number, metrics: TicketMetrics, revocations: Revocations, now?: () => number }) {
    this.#engine = options.engine
    this.#ttlSeconds = options.ttlSeconds
    this.#metrics = options.metrics
    this.#revocations = options.revocations
    this.#now = options.now ?? Date.now
  }

  /**
   * Mints and stores a ticket. `admission`, when given, runs alongside the store (a
   * rate-limit check, say): if it rejects, so does `issue`, and the stored ticket is
   * never handed out. A TicketQuota is counted in the store's own round trip instead
   * and admitted once it answers: refused the same way. Rejects with EngineUnavailableError when the engine cannot store it,
   * and with GatewayError SESSION_REVOKED while the user or the session is banned (SPEC §3).
   */
  async issue (identity: Identity, admission?: Promise<void> | TicketQuota): Promise<TicketResponse> {
    if (admission !== undefined && !(admission instanceof Promise)) return await this.#issue(identity, undefined, admission)
    return await this.#issue(identity, admission, undefined)
  }

  async #issue (identity: Identity, admission: Promise<void> | undefined, quota: TicketQuota | undefined): Promise<TicketResponse> {
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
    const record = { sub: identity.sub, sessionId: identity.sessionId, issuedAt, expiresAt, channels: identity.channels ?? [], publish: identity.publish ?? [], ...(identity.info === undefined ? {} : { info: identity.info }) }
    const storageTtlSeconds = this.#ttlSeconds + EXPIRED_VISIBILITY_SECONDS
    if (quota !== undefined) {
      quota.admit(await this.#engine.storeTicketCounted(hashTicket(ticket), record, storageTtlSeconds, quota.counterKey, quota.windowMs))
    } else {
      await Promise.all([admission, this.#engine.storeTicket(hashTicket(ticket), record, storageTtlSeconds)])
    }
    this.#metrics.ticketIssued()
    return { ticket, expiresAt: new Date(expiresAt).toISOString(), ttlSeconds: this.#ttlSeconds }
  }

  /** Consumes a presented ticket once; never throws. */
  async consume (ticket: string | undefined): Promise<ConsumeResult> {
    const result = await this.#consume(ticket)
    if (result.ok) this.#metrics.ticketConsumed()
    else this.#metrics.ticketRejected(result.reason)
    return result
  }

  async #consume (ticket: string | undefined): Promise<ConsumeResult> {
    if (ticket === undefined || ticket === '') return rejected('missing')
    // A malformed ticket cannot exist in the store: no round trip for it.
    if (!TICKET_PATTERN.test(ticket)) return rejected('invalid')
    let record: TicketRecord | null
    try {
      // Only until the bans are loaded; a ticket is never consumed without knowing them.
      const loading = this.#revocations.pending()
      if (loading !== undefined) await loading
      record = await this.#engine.consumeTicket(hashTicket(ticket))
    } catch (err) {
      if (err instanceof EngineUnavailableError) return rejected('engine_unavailable')
      throw err
    }
    if (record === null) return rejected('invalid')
    // SPEC §3: a ticket of a banned user or session is refused whenever it was issued.
    // Issuing is refused during a ban, so any such ticket predates it or raced its
    // broadcast; comparing issue time and ban time would let the race win, and would
    // depend on the two instances' clocks agreeing.
    if (this.#revocations.isRevoked(record.sub, record.sessionId)) return rejected('revoked')
    if (record.expiresAt <= this.#now()) return rejected('expired')
    return { ok: true, record }
  }
}
