import { EngineUnavailableError, ReadinessSignal, type Engine, type TicketRecord } from './engine.js'

interface StoredTicket {
  readonly record: TicketRecord
  readonly expiresAt: number
}

/**
 * The embedded engine (SPEC §2: used when REDIS_URL is unset). It serves one
 * instance only: nothing is shared between processes.
 */
export class MemoryEngine implements Engine {
  readonly kind = 'memory' as const
  readonly #tickets = new Map<string, StoredTicket>()
  readonly #readiness = new ReadinessSignal()
  readonly #sweeper: NodeJS.Timeout
  readonly #now: () => number

  constructor (options: { now?: () => number, sweepIntervalMs?: number } = {}) {
    this.#now = options.now ?? Date.now
    this.#readiness.set(true)
    // Expired tickets are dropped on read too; the sweep only bounds memory.
    this.#sweeper = setInterval(() => { this.#sweep() }, options.sweepIntervalMs ?? 10_000)
    this.#sweeper.unref()
  }

  isReady (): boolean {
    return this.#readiness.ready
  }

  onReadyChange (listener: (ready: boolean) => void): () => void {
    return this.#readiness.subscribe(listener)
  }

  async storeTicket (ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void> {
    this.#assertReady()
    this.#tickets.set(ticketHash, { record, expiresAt: this.#now() + storageTtlSeconds * 1000 })
  }

  async consumeTicket (ticketHash: string): Promise<TicketRecord | null> {
    this.#assertReady()
    const stored = this.#tickets.get(ticketHash)
    if (stored === undefined) return null
    this.#tickets.delete(ticketHash)
    return stored.expiresAt > this.#now() ? stored.record : null
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#readiness.set(false)
    this.#tickets.clear()
  }

  #assertReady (): void {
    if (!this.#readiness.ready) throw new EngineUnavailableError('memory engine is closed')
  }

  #sweep (): void {
    const now = this.#now()
    for (const [hash, stored] of this.#tickets) {
      if (stored.expiresAt <= now) this.#tickets.delete(hash)
    }
  }
}
