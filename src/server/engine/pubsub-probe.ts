/**
 * The delivery probe (SPEC §14): every interval a small message goes out on a probe
 * channel of this instance on each pub/sub shard it listens on, and must come back
 * within the timeout. Two misses in a row and the `pubsub` check fails, the shard's
 * subscriber connection is re-established (which re-syncs every channel from
 * history) and the check passes again with the next probe that returns. A subscriber
 * that stays open but delivers nothing ("deaf") is so found within
 * 2 × interval + timeout. Free of ioredis: the transport (pubsub-probe-transport.ts)
 * says how to subscribe, publish and heal on each topology.
 */
import type { EngineCheck, EngineLogger } from './engine.js'

/** How the probe reaches pub/sub on one topology. */
export interface PubsubProbeTransport {
  /** The probe channel of every pub/sub shard this instance listens on (one per Cluster master). */
  shards (): readonly string[]
  subscribe (channel: string): Promise<void>
  publish (channel: string, payload: string): Promise<void>
  /** Re-establishes the subscriber of the shard of `channel` and re-syncs the channels it carries. */
  heal (channel: string): Promise<void>
}

/** What the probe counts (the app's GatewayMetrics). */
export interface PubsubProbeObserver {
  /** A probe came back after `seconds`. */
  roundTrip (seconds: number): void
  missed (): void
  healed (): void
}

export interface PubsubProbeOptions {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly transport: PubsubProbeTransport
  /** False while Redis itself is not connected: the `redis` check says so, no probe is sent or counted. */
  readonly isConnected: () => boolean
  readonly logger: EngineLogger
  readonly observer?: PubsubProbeObserver | undefined
}

/** SPEC §2: PUBSUB_PROBE_INTERVAL_MS, PUBSUB_PROBE_TIMEOUT_MS. */
export const PROBE_DEFAULTS = { intervalMs: 5000, timeoutMs: 2000 } as const

/** Misses in a row that fail the check and re-establish the subscriber (SPEC §14). */
export const MISSES_TO_FAIL = 2

interface Outstanding {
  readonly id: number
  readonly sentAt: number
}

class ShardProbe {
  subscribed = false
  outstanding: Outstanding | undefined
  /** Every probe id up to this one was sent; a later arrival of any of them still proves delivery. */
  lastSentId = 0
  lastSeenId = 0
  misses = 0
  healing: Promise<void> | undefined
}

/**
 * The miss/heal state machine. A miss is only counted when the loop could have read
 * the reply: the deadline timer defers its verdict with setImmediate, so a reply that
 * already sits in the socket after a stall is read (poll phase) before it is judged,
 * and a deadline that fires later than a whole timeout (the loop itself stalled) is
 * re-armed instead of counted. An overloaded instance never reports pub/sub as deaf
 * (SPEC §13).
 */
export class PubsubProbe {
  readonly #options: PubsubProbeOptions
  readonly #shards = new Map<string, ShardProbe>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #interval: NodeJS.Timeout | undefined
  #nextId = 0
  #failing: { reason: string } | undefined
  #since = Date.now()
  #closed = false

  constructor (options: PubsubProbeOptions) {
    this.#options = options
  }

  start (): void {
    if (this.#interval !== undefined || this.#closed) return
    this.#interval = setInterval(() => { void this.#round() }, this.#options.intervalMs)
    this.#interval.unref()
  }

  close (): void {
    this.#closed = true
    clearInterval(this.#interval)
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
  }

  /** The `pubsub` check (SPEC §3). */
  check (): EngineCheck {
    return this.#failing === undefined
      ? { name: 'pubsub', ok: true, since: this.#since }
      : { name: 'pubsub', ok: false, reason: this.#failing.reason, since: this.#since }
  }

  /** True when `channel` is a probe channel (the message is the probe's, not a client channel's). */
  received (channel: string, payload: string): boolean {
    const shard = this.#shards.get(channel)
    if (shard === undefined) return false
    const id = Number(payload)
    if (!Number.isInteger(id) || id <= shard.lastSeenId || id > shard.lastSentId) return true
    shard.lastSeenId = id
    if (shard.outstanding?.id === id) this.#options.observer?.roundTrip((Date.now() - shard.outstanding.sentAt) / 1000)
    // Any probe of this shard back, even one already counted missed: it delivers.
    if (shard.outstanding !== undefined && shard.outstanding.id <= id) shard.outstanding = undefined
    shard.misses = 0
    if ([...this.#shards.values()].every((each) => each.misses === 0)) this.#pass()
    return true
  }

  async #round (): Promise<void> {
    if (this.#closed) return
    if (!this.#options.isConnected()) {
      // Not a miss: Redis is down (the `redis` check), and the reconnect re-establishes the subscriber anyway.
      for (const shard of this.#shards.values()) {
        shard.outstanding = undefined
        shard.misses = 0
      }
      return
    }
    const channels = this.#options.transport.shards()
    for (const channel of [...this.#shards.keys()]) if (!channels.includes(channel)) this.#shards.delete(channel)
    await Promise.all(channels.map(async (channel) => { await this.#probe(channel) }))
  }

  async #probe (channel: string): Promise<void> {
    let shard = this.#shards.get(channel)
    if (shard === undefined) {
      shard = new ShardProbe()
      this.#shards.set(channel, shard)
    }
    // One probe in flight per shard: its deadline decides it.
    if (shard.outstanding !== undefined || shard.healing !== undefined) return
    const { transport, timeoutMs } = this.#options
    const id = ++this.#nextId
    shard.lastSentId = id
    const outstanding = { id, sentAt: Date.now() }
    shard.outstanding = outstanding
    // Armed before the SUBSCRIBE: a subscriber connection that never answers it is as deaf as one that never delivers.
    this.#arm(shard, outstanding, timeoutMs)
    try {
      if (!shard.subscribed) {
        await transport.subscribe(channel)
        shard.subscribed = true
      }
    } catch {
      // Refused: the deadline counts it, as for a probe that never comes back.
      return
    }
    try {
      await transport.publish(channel, String(id))
    } catch {
      // A publish that failed (Redis down, a timeout) is the `redis` check's business, not a deaf subscriber.
      if (shard.outstanding === outstanding) shard.outstanding = undefined
    }
  }

  #arm (shard: ShardProbe, outstanding: Outstanding, delayMs: number): void {
    const armedAt = Date.now()
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      const lateMs = Date.now() - armedAt - delayMs
      // The loop stalled for longer than the whole budget: the reply had no chance to be read. Measure again.
      if (lateMs > this.#options.timeoutMs) {
        this.#arm(shard, outstanding, this.#options.timeoutMs)
        return
      }
      // Let the poll phase read what already arrived before judging.
      setImmediate(() => { this.#judge(shard, outstanding) })
    }, delayMs)
    timer.unref()
    this.#timers.add(timer)
  }

  #judge (shard: ShardProbe, outstanding: Outstanding): void {
    if (this.#closed || shard.outstanding !== outstanding) return
    shard.outstanding = undefined
    if (!this.#options.isConnected()) return
    shard.misses += 1
    this.#options.observer?.missed()
    const channel = [...this.#shards.entries()].find(([, each]) => each === shard)?.[0]
    this.#options.logger.warn({ event: 'engine.pubsub.probe_missed', misses: shard.misses }, 'pub/sub probe did not come back in time')
    if (channel === undefined) return
    // The next probe goes out now rather than at the next tick (which found this one in
    // flight): the second miss then lands within 2 × interval + timeout of going deaf.
    if (shard.misses < MISSES_TO_FAIL) {
      void this.#probe(channel)
      return
    }
    this.#fail(`probe missed ×${shard.misses}`)
    if (shard.misses % MISSES_TO_FAIL === 0) this.#heal(shard, channel)
  }

  #heal (shard: ShardProbe, channel: string): void {
    this.#options.logger.error({ event: 'engine.pubsub.deaf', misses: shard.misses }, 'pub/sub subscriber delivers nothing: re-establishing it and re-syncing channels from history')
    this.#options.observer?.healed()
    shard.healing = this.#options.transport.heal(channel)
      .catch((err: unknown) => {
        this.#options.logger.error({ event: 'engine.pubsub.heal_failed', err: { message: err instanceof Error ? err.message : String(err) } }, 'could not re-establish the pub/sub subscriber')
      })
      .finally(() => { shard.healing = undefined })
  }

  #fail (reason: string): void {
    if (this.#failing === undefined) this.#since = Date.now()
    this.#failing = { reason }
  }

  #pass (): void {
    if (this.#failing === undefined) return
    this.#failing = undefined
    this.#since = Date.now()
    this.#options.logger.info({ event: 'engine.pubsub.delivering' }, 'pub/sub probe back: delivering again')
  }
}
