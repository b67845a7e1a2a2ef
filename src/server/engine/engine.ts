/**
 * The shared engine behind the gateway (SPEC §1): Redis in production, an embedded
 * memory engine for one instance. Both implement this interface and pass the same
 * contract tests (test/server/engine/contract.ts and relay-contract.ts), so the rest of the
 * gateway cannot tell them apart.
 */
import type { PresenceEngine } from './presence-types.js'

/** What a ticket binds (SPEC §3): who, which session, when. */
export interface TicketRecord {
  readonly sub: string
  readonly sessionId: string
  /** Issue time, epoch milliseconds. */
  readonly issuedAt: number
  /** End of validity, epoch milliseconds (the stored key may live a little longer). */
  readonly expiresAt: number
  /** The JWT's `channels` patterns, captured at issue time (SPEC §5). */
  readonly channels: readonly string[]
  /**
   * The JWT's `publish` patterns (SPEC §9), captured like `channels`. Absent on records
   * stored before client publish existed: no publish rights.
   */
  readonly publish?: readonly string[]
  /** The JWT's `info` claim as JSON text (SPEC §11 presence), captured like `channels`. */
  readonly info?: string
}

/** A channel message as stored and delivered; `data` is its JSON text, never re-parsed. */
export interface ChannelMessage {
  readonly channel: string
  readonly epoch: string
  readonly seq: number
  readonly data: string
  /** The publishing user of a client publish (SPEC §9), set by the gateway; absent for backend publishes. */
  readonly from?: string
}

export interface PublishOptions {
  /** Same key within `idempotencyTtlSeconds`: the first offset back, no second message. */
  readonly idempotencyKey?: string
  /** Stored with the message and delivered as the frame's `from` (SPEC §9 client publish). */
  readonly from?: string
}

export interface PublishResult {
  readonly epoch: string
  readonly seq: number
  /** True when the idempotency key had been seen: nothing was published. */
  readonly duplicate: boolean
}

export interface HistoryRead {
  /** The channel's current epoch and last seq (0 when empty). */
  readonly epoch: string
  readonly seq: number
  /** False when `since` is from another epoch or older than what is retained. */
  readonly recovered: boolean
  /** Retained messages after `since`, in order (none when not recovered or no `since`). */
  readonly messages: readonly ChannelMessage[]
}

export interface RelaySettings {
  readonly historySize: number
  readonly historyTtlSeconds: number
  /** Publish idempotency keys and upstream `send` ids are remembered this long. */
  readonly idempotencyTtlSeconds: number
  /** Approximate cap of the inbound stream (backends should consume well before). */
  readonly inboundMaxLength: number
  /** Approximate cap of the lifecycle events stream (SPEC §12; default 100 000). */
  readonly eventsMaxLength?: number
}

/** A client's upstream message (SPEC §5 `send`), as backends read it from the inbound stream. */
export interface InboundMessage {
  readonly userId: string
  readonly sessionId: string
  readonly connectionId: string
  /** The client's request id: with sessionId, what makes a retry a duplicate. */
  readonly id: string
  /** JSON text. */
  readonly data: string
}

/** Whom a ban names (SPEC §3 `/v1/disconnect` with `revokeSeconds`): every session of a user, or one session. */
export interface RevocationTarget {
  readonly kind: 'user' | 'session'
  readonly id: string
}

/** A ban in force, as the engine holds it. */
export interface StoredRevocation {
  readonly target: RevocationTarget
  /**
   * Milliseconds the ban has left, measured on the engine's own clock (Redis: its
   * `TIME`), so instances whose clocks disagree still agree on how long it lasts.
   */
  readonly remainingMs: number
}

/** A fixed-window counter after one more hit (SPEC §13 limits). */
export interface CounterHit {
  /** Hits in the current window, this one included. */
  readonly count: number
  /** Milliseconds until the window ends and the count starts again. */
  readonly ttlMs: number
}

export interface Engine {
  /** Presence and the per-user connection registry (SPEC §11): presence-types.ts. */
  readonly presence: PresenceEngine
  readonly kind: 'memory' | 'redis'
  /** True while the engine can serve commands; never blocks. */
  isReady(): boolean
  /** Called with the new readiness each time it flips. Returns an unsubscribe function. */
  onReadyChange(listener: (ready: boolean) => void): () => void
  /**
   * What `/readyz` names (SPEC §3): `redis` and `pubsub` on the Redis engine, `engine` on
   * the embedded one, each with why it fails and since when. Never blocks.
   */
  checks(): readonly EngineCheck[]
  /** Stores a ticket under its hash, kept for `storageTtlSeconds`. Rejects with EngineUnavailableError when not ready. */
  storeTicket(ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void>
  /**
   * Atomically reads and deletes a ticket (SPEC §4: of any number of concurrent
   * consumers, exactly one gets the record). Null when unknown, expired or used.
   */
  consumeTicket(ticketHash: string): Promise<TicketRecord | null>
  /**
   * storeTicket and one countHit on `counterKey`, in one round trip where the topology
   * allows (one script on a standalone or Sentinel Redis; on a Cluster the two keys live
   * on different slots: two commands, pipelined). Rejects as storeTicket does.
   */
  storeTicketCounted(ticketHash: string, record: TicketRecord, storageTtlSeconds: number, counterKey: string, windowMs: number): Promise<CounterHit>
  /**
   * Appends to the channel's history and publishes to every instance, atomically: the
   * history and the live message carry the same seq, so a subscriber that misses a
   * live message can fill the gap from history.
   */
  publish(channel: string, data: string, options?: PublishOptions): Promise<PublishResult>
  /** The channel's position and, with `since`, the retained messages after it. */
  readHistory(channel: string, since?: { epoch: string, seq: number }): Promise<HistoryRead>
  /** Live messages of every channel this instance listens to. One listener per engine. */
  onChannelMessage(listener: (message: ChannelMessage) => void): void
  /** Starts or stops listening to a channel's live messages on this instance. */
  listen(channel: string): Promise<void>
  unlisten(channel: string): Promise<void>
  /**
   * Appends to the inbound stream (`<prefix>inbound`) unless the same session sent
   * the same id within `idempotencyTtlSeconds`. True when appended, false for a duplicate.
   */
  appendInbound(message: InboundMessage): Promise<boolean>
  /** Sends a control message (JSON text) to every instance, this one included. */
  broadcastControl(message: string): Promise<void>
  /** Control messages from any instance. One listener per engine. */
  onControl(listener: (message: string) => void): void
  /**
   * Bans a target for `seconds` from now, shared by every instance. A ban of the same
   * target that already lasts longer is kept as it is (bans only ever get longer).
   */
  storeRevocation(target: RevocationTarget, seconds: number): Promise<void>
  /** Every ban still in force; what a starting (or reconnected) instance loads. */
  loadRevocations(): Promise<StoredRevocation[]>
  /**
   * Counts one hit on the fixed window `key` (a window of `windowMs` starts with its
   * first hit), shared by every instance. Rejects with EngineUnavailableError when not ready.
   */
  countHit(key: string, windowMs: number): Promise<CounterHit>
  /** Releases connections and timers. */
  close(): Promise<void>
  /**
   * A page of a channel's history for backends (SPEC §10 GET /v1/history): without
   * `since`, the latest `limit` retained messages; with `since`, at most `limit` of the
   * messages after it, `recovered` decided as by readHistory (recovery.ts historyHolds).
   */
  readHistoryPage(channel: string, page: HistoryPage): Promise<HistoryRead>
  /**
   * Appends one lifecycle event (SPEC §12) to `<prefix>events`, a stream capped at about
   * `eventsMaxLength` entries. Field order is kept. Rejects with EngineUnavailableError when not ready.
   */
  appendEvent(fields: EventFields): Promise<void>
  /** The latest `count` lifecycle events, oldest first (tests, debugging; backends use consumer groups). */
  readEvents(count: number): Promise<EventFields[]>
}

/** What GET /v1/history asks of the engine (SPEC §10). */
export interface HistoryPage {
  readonly since?: { readonly epoch: string, readonly seq: number } | undefined
  /** At least 1. */
  readonly limit: number
}

/** One lifecycle event as stored: field → text, in order (the domain decides the fields). */
export type EventFields = Readonly<Record<string, string>>

/** The lifecycle stream's cap when RelaySettings names none (SPEC §12). */
export const DEFAULT_EVENTS_MAX_LENGTH = 100_000

/** The engine cannot serve right now; callers answer 503 / close 1013. */
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError'
}

/**
 * A command failed because this process's own event loop stalled (the reply was
 * most likely waiting in the socket while the timeout fired), not because Redis is
 * down (SPEC §13). Deliberately not an EngineUnavailableError: callers that answer
 * "Redis not ready" for those let this one through, and it is answered 503
 * OVERLOADED instead.
 */
export class EngineOverloadedError extends Error {
  override name = 'EngineOverloadedError'
}

/** One readiness check as an engine reports it (SPEC §3 `/readyz`). */
export interface EngineCheck {
  readonly name: 'redis' | 'pubsub' | 'engine'
  readonly ok: boolean
  /** Why it fails, short (`ECONNREFUSED`, `probe missed ×2`); absent while ok. */
  readonly reason?: string
  /** When it entered its current state, epoch milliseconds. */
  readonly since: number
}

/** Keeps readiness listeners; shared by both engines. */
export class ReadinessSignal {
  #ready = false
  #since = Date.now()
  readonly #listeners = new Set<(ready: boolean) => void>()

  get ready (): boolean {
    return this.#ready
  }

  /** When readiness last flipped (or the signal was made), epoch milliseconds. */
  get since (): number {
    return this.#since
  }

  set (ready: boolean): void {
    if (ready === this.#ready) return
    this.#ready = ready
    this.#since = Date.now()
    for (const listener of this.#listeners) listener(ready)
  }

  /**
   * Tells the listeners readiness was lost and is back, with no moment anyone could see
   * it lost: a subscriber connection was re-established while commands went on (the
   * delivery probe's heal, SPEC §14), and whoever re-syncs after a reconnect must now.
   */
  pulse (): void {
    if (!this.#ready) return
    for (const listener of this.#listeners) listener(false)
    for (const listener of this.#listeners) listener(true)
  }

  subscribe (listener: (ready: boolean) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }
}

export function encodeTicketRecord (record: TicketRecord): string {
  return JSON.stringify({ sub: record.sub, sid: record.sessionId, iat: record.issuedAt, exp: record.expiresAt, ch: record.channels, pb: record.publish, in: record.info })
}

export function decodeTicketRecord (value: string): TicketRecord {
  const raw = JSON.parse(value) as { sub: string, sid: string, iat: number, exp: number, ch?: string[], pb?: string[], in?: string }
  const record = { sub: raw.sub, sessionId: raw.sid, issuedAt: raw.iat, expiresAt: raw.exp, channels: raw.ch ?? [], ...(raw.in === undefined ? {} : { info: raw.in }) }
  // `pb` is absent on records of older instances (rolling deploy): no publish rights.
  return raw.pb === undefined ? record : { ...record, publish: raw.pb }
}

/** The slice of a pino logger the engines use (kept minimal so engines never import Fastify). */
export interface EngineLogger {
  info (obj: object, msg?: string): void
  warn (obj: object, msg?: string): void
  error (obj: object, msg?: string): void
}
