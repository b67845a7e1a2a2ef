/**
 * The shared engine behind the gateway (SPEC §1): Redis in production, an embedded
 * memory engine for one instance. Both implement this interface and pass the same
 * contract tests (test/engine/contract.ts), so the rest of the gateway cannot tell
 * them apart. The relay (channels, history, inbound stream) extends it.
 */

/** What a ticket binds (SPEC §3): who, which session, when. */
export interface TicketRecord {
  readonly sub: string
  readonly sessionId: string
  /** Issue time, epoch milliseconds. */
  readonly issuedAt: number
  /** End of validity, epoch milliseconds (the stored key may live a little longer). */
  readonly expiresAt: number
}

export interface Engine {
  readonly kind: 'memory' | 'redis'
  /** True while the engine can serve commands; never blocks. */
  isReady(): boolean
  /** Called with the new readiness each time it flips. Returns an unsubscribe function. */
  onReadyChange(listener: (ready: boolean) => void): () => void
  /** Stores a ticket under its hash, kept for `storageTtlSeconds`. Rejects with EngineUnavailableError when not ready. */
  storeTicket(ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void>
  /**
   * Atomically reads and deletes a ticket (SPEC §4: of any number of concurrent
   * consumers, exactly one gets the record). Null when unknown, expired or used.
   */
  consumeTicket(ticketHash: string): Promise<TicketRecord | null>
  /** Releases connections and timers. */
  close(): Promise<void>
}

/** The engine cannot serve right now; callers answer 503 / close 1013. */
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError'
}

/** Keeps readiness listeners; shared by both engines. */
export class ReadinessSignal {
  #ready = false
  readonly #listeners = new Set<(ready: boolean) => void>()

  get ready (): boolean {
    return this.#ready
  }

  set (ready: boolean): void {
    if (ready === this.#ready) return
    this.#ready = ready
    for (const listener of this.#listeners) listener(ready)
  }

  subscribe (listener: (ready: boolean) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }
}

export function encodeTicketRecord (record: TicketRecord): string {
  return JSON.stringify({ sub: record.sub, sid: record.sessionId, iat: record.issuedAt, exp: record.expiresAt })
}

export function decodeTicketRecord (value: string): TicketRecord {
  const raw = JSON.parse(value) as { sub: string, sid: string, iat: number, exp: number }
  return { sub: raw.sub, sessionId: raw.sid, issuedAt: raw.iat, expiresAt: raw.exp }
}

/** The slice of a pino logger the engines use (kept minimal so engines never import Fastify). */
export interface EngineLogger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}
