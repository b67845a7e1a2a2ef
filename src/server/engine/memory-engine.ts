import { randomBytes } from 'node:crypto'
import {
  DEFAULT_EVENTS_MAX_LENGTH,
  EngineUnavailableError,
  ReadinessSignal,
  type ChannelMessage,
  type CounterHit,
  type Engine,
  type EngineCheck,
  type EventFields,
  type HistoryPage,
  type HistoryRead,
  type InboundMessage,
  type PublishOptions,
  type PublishResult,
  type RelaySettings,
  type RevocationTarget,
  type StoredRevocation,
  type TicketRecord
} from './engine.js'
import { historyHolds } from '../channels/recovery.js'
import { MemoryPresence } from './memory-presence.js'

export const DEFAULT_RELAY_SETTINGS: RelaySettings = { historySize: 1000, historyTtlSeconds: 3600, idempotencyTtlSeconds: 300, inboundMaxLength: 100_000 }

interface ChannelHistory {
  readonly epoch: string
  seq: number
  readonly messages: ChannelMessage[]
  expiresAt: number
}

interface StoredTicket {
  readonly record: TicketRecord
  readonly expiresAt: number
}

/**
 * The embedded engine (SPEC §2: used when no Redis topology is configured). It serves one
 * instance only: nothing is shared between processes.
 */
export class MemoryEngine implements Engine {
  readonly kind = 'memory' as const
  readonly #tickets = new Map<string, StoredTicket>()
  readonly #readiness = new ReadinessSignal()
  readonly #sweeper: NodeJS.Timeout
  readonly #now: () => number
  readonly #relay: RelaySettings
  readonly #channels = new Map<string, ChannelHistory>()
  readonly #idempotency = new Map<string, { readonly result: PublishResult, readonly expiresAt: number }>()
  readonly #listening = new Set<string>()
  readonly #inboundSeen = new Map<string, number>()
  /** Bans by `<kind>\u0000<id>` → end, epoch ms. */
  readonly #revocations = new Map<string, number>()
  /** Fixed-window counters: key → hits and the window's end, epoch ms. */
  readonly #counters = new Map<string, { count: number, readonly endsAt: number }>()
  /** Presence and the per-user registry (SPEC §11). */
  readonly presence: MemoryPresence
  #onMessage: ((message: ChannelMessage) => void) | undefined
  #onControl: ((message: string) => void) | undefined
  /** Lifecycle events (SPEC §12), oldest first; readable only through readEvents (one process). */
  #events: EventFields[] = []

  constructor (options: { now?: () => number, sweepIntervalMs?: number, relay?: RelaySettings } = {}) {
    this.#now = options.now ?? Date.now
    this.#relay = options.relay ?? DEFAULT_RELAY_SETTINGS
    this.#readiness.set(true)
    this.presence = new MemoryPresence({ now: this.#now, assertReady: () => { this.#assertReady() } })
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

  checks (): readonly EngineCheck[] {
    return [{ name: 'engine', ok: this.#readiness.ready, since: this.#readiness.since }]
  }

  async storeTicket (ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void> {
    this.#assertReady()
    this.#tickets.set(ticketHash, { record, expiresAt: this.#now() + storageTtlSeconds * 1000 })
  }

  async storeTicketCounted (ticketHash: string, record: TicketRecord, storageTtlSeconds: number, counterKey: string, windowMs: number): Promise<CounterHit> {
    await this.storeTicket(ticketHash, record, storageTtlSeconds)
    return await this.countHit(counterKey, windowMs)
  }

  async consumeTicket (ticketHash: string): Promise<TicketRecord | null> {
    this.#assertReady()
    const stored = this.#tickets.get(ticketHash)
    if (stored === undefined) return null
    this.#tickets.delete(ticketHash)
    return stored.expiresAt > this.#now() ? stored.record : null
  }

  async publish (channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    this.#assertReady()
    const idempotencyKey = options.idempotencyKey === undefined ? undefined : `${channel}\u0000${options.idempotencyKey}`
    if (idempotencyKey !== undefined) {
      const prior = this.#idempotency.get(idempotencyKey)
      if (prior !== undefined && prior.expiresAt > this.#now()) return { ...prior.result, duplicate: true }
    }
    const history = this.#history(channel)
    history.seq += 1
    const message: ChannelMessage = { channel, epoch: history.epoch, seq: history.seq, data, ...(options.from === undefined ? {} : { from: options.from }) }
    history.messages.push(message)
    if (history.messages.length > this.#relay.historySize) history.messages.shift()
    history.expiresAt = this.#now() + this.#relay.historyTtlSeconds * 1000
    const result = { epoch: history.epoch, seq: history.seq, duplicate: false }
    if (idempotencyKey !== undefined) {
      this.#idempotency.set(idempotencyKey, { result, expiresAt: this.#now() + this.#relay.idempotencyTtlSeconds * 1000 })
    }
    // Delivered asynchronously, as Redis pub/sub would be.
    if (this.#listening.has(channel)) queueMicrotask(() => { this.#onMessage?.(message) })
    return result
  }

  async readHistory (channel: string, since?: { epoch: string, seq: number }): Promise<HistoryRead> {
    this.#assertReady()
    const history = this.#history(channel)
    const position = { epoch: history.epoch, seq: history.seq }
    if (since === undefined) return { ...position, recovered: true, messages: [] }
    if (!historyHolds(since, position, history.messages[0]?.seq ?? history.seq + 1)) return { ...position, recovered: false, messages: [] }
    return { ...position, recovered: true, messages: history.messages.filter((message) => message.seq > since.seq) }
  }

  async appendInbound (message: InboundMessage): Promise<boolean> {
    this.#assertReady()
    const key = `${message.sessionId}\u0000${message.id}`
    const seenUntil = this.#inboundSeen.get(key)
    if (seenUntil !== undefined && seenUntil > this.#now()) return false
    this.#inboundSeen.set(key, this.#now() + this.#relay.idempotencyTtlSeconds * 1000)
    // Only the dedupe is kept: no backend can read this process's memory, so the
    // embedded engine stores no stream for one to consume.
    return true
  }

  async broadcastControl (message: string): Promise<void> {
    this.#assertReady()
    queueMicrotask(() => { this.#onControl?.(message) })
  }

  onControl (listener: (message: string) => void): void {
    this.#onControl = listener
  }

  onChannelMessage (listener: (message: ChannelMessage) => void): void {
    this.#onMessage = listener
  }

  async storeRevocation (target: RevocationTarget, seconds: number): Promise<void> {
    this.#assertReady()
    const key = `${target.kind}\u0000${target.id}`
    const until = this.#now() + seconds * 1000
    // Like the Redis script: a longer ban already in force is kept.
    if ((this.#revocations.get(key) ?? 0) < until) this.#revocations.set(key, until)
  }

  async loadRevocations (): Promise<StoredRevocation[]> {
    this.#assertReady()
    const now = this.#now()
    const active: StoredRevocation[] = []
    for (const [key, until] of this.#revocations) {
      if (until <= now) continue
      const separator = key.indexOf('\u0000')
      active.push({ target: { kind: key.slice(0, separator) as RevocationTarget['kind'], id: key.slice(separator + 1) }, remainingMs: until - now })
    }
    return active
  }

  async countHit (key: string, windowMs: number): Promise<CounterHit> {
    this.#assertReady()
    const now = this.#now()
    let counter = this.#counters.get(key)
    if (counter === undefined || counter.endsAt <= now) {
      counter = { count: 0, endsAt: now + windowMs }
      this.#counters.set(key, counter)
    }
    counter.count += 1
    return { count: counter.count, ttlMs: counter.endsAt - now }
  }

  async listen (channel: string): Promise<void> {
    this.#assertReady()
    this.#listening.add(channel)
  }

  async unlisten (channel: string): Promise<void> {
    this.#listening.delete(channel)
  }

  async close (): Promise<void> {
    clearInterval(this.#sweeper)
    this.#readiness.set(false)
    this.#tickets.clear()
    this.#channels.clear()
    this.#idempotency.clear()
    this.#listening.clear()
    this.#revocations.clear()
  }

  async readHistoryPage (channel: string, page: HistoryPage): Promise<HistoryRead> {
    if (page.since !== undefined) {
      const read = await this.readHistory(channel, page.since)
      return { ...read, messages: read.messages.slice(0, page.limit) }
    }
    this.#assertReady()
    const history = this.#history(channel)
    const from = Math.max(0, history.messages.length - page.limit)
    return { epoch: history.epoch, seq: history.seq, recovered: true, messages: history.messages.slice(from) }
  }

  async appendEvent (fields: EventFields): Promise<void> {
    this.#assertReady()
    this.#events.push({ ...fields })
    // Trimmed in batches, as Redis' MAXLEN ~ trims whole nodes: about the cap, never far over.
    const cap = this.#relay.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH
    if (this.#events.length > cap + Math.max(1, Math.floor(cap / 100))) this.#events = this.#events.slice(-cap)
  }

  async readEvents (count: number): Promise<EventFields[]> {
    this.#assertReady()
    return this.#events.slice(Math.max(0, this.#events.length - count))
  }


  /** The channel's live history, a new epoch when it had none or it expired. */
  #history (channel: string): ChannelHistory {
    let history = this.#channels.get(channel)
    if (history === undefined || history.expiresAt <= this.#now()) {
      history = { epoch: randomBytes(6).toString('base64url'), seq: 0, messages: [], expiresAt: this.#now() + this.#relay.historyTtlSeconds * 1000 }
      this.#channels.set(channel, history)
    }
    return history
  }

  #assertReady (): void {
    if (!this.#readiness.ready) throw new EngineUnavailableError('memory engine is closed')
  }

  #sweep (): void {
    const now = this.#now()
    for (const [hash, stored] of this.#tickets) {
      if (stored.expiresAt <= now) this.#tickets.delete(hash)
    }
    for (const [channel, history] of this.#channels) {
      if (history.expiresAt <= now) this.#channels.delete(channel)
    }
    for (const [key, entry] of this.#idempotency) {
      if (entry.expiresAt <= now) this.#idempotency.delete(key)
    }
    for (const [key, until] of this.#inboundSeen) {
      if (until <= now) this.#inboundSeen.delete(key)
    }
    for (const [key, counter] of this.#counters) {
      if (counter.endsAt <= now) this.#counters.delete(key)
    }
    for (const [key, until] of this.#revocations) {
      if (until <= now) this.#revocations.delete(key)
    }
  }
}
