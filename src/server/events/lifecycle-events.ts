/**
 * Lifecycle events for backends (SPEC §12): with LIFECYCLE_EVENTS set, one entry per
 * event in the engine's `<prefix>events` stream, read by backends with consumer groups
 * (examples/lifecycle-consumer.ts). Writing never delays or breaks the client path:
 * each write is fire-and-forget, at most `maxInFlight` are pending at once (past that
 * an event is dropped, not queued), and every outcome is counted.
 */
import type { Engine, EngineLogger, EventFields } from '../engine/engine.js'

export const LIFECYCLE_EVENT_NAMES = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'join', 'leave'] as const
export type LifecycleEventName = typeof LIFECYCLE_EVENT_NAMES[number]

/** `written`: in the stream; `failed`: the engine refused or was down; `dropped`: too many writes in flight. */
export type LifecycleOutcome = 'written' | 'failed' | 'dropped'
export const LIFECYCLE_OUTCOMES = ['written', 'failed', 'dropped'] as const satisfies readonly LifecycleOutcome[]

/** What lifecycle events count (the app's GatewayMetrics: rtgw_lifecycle_events_total). */
export interface LifecycleMetrics {
  lifecycleEvent (event: LifecycleEventName, outcome: LifecycleOutcome): void
}

/** Whom an event is about: a connection (ws ConnectionIdentity satisfies it). */
export interface EventSubject {
  readonly userId: string
  readonly sessionId: string
  readonly connectionId: string
}

/**
 * LIFECYCLE_EVENTS (SPEC §2): a comma list of event names; unset or empty, none.
 * `fail` makes the boot error (config.ts's ConfigError) from the one line naming it.
 */
export function lifecycleEventsOf (value: string | undefined, fail: (message: string) => Error): ReadonlySet<LifecycleEventName> {
  const names = (value ?? '').split(',').map((name) => name.trim()).filter(Boolean)
  for (const name of names) {
    if (!(LIFECYCLE_EVENT_NAMES as readonly string[]).includes(name)) {
      throw fail(`Invalid configuration: LIFECYCLE_EVENTS entry "${name.slice(0, 40)}" is not one of ${LIFECYCLE_EVENT_NAMES.join(', ')}`)
    }
  }
  return new Set(names as LifecycleEventName[])
}

export interface LifecycleEventsOptions {
  readonly engine: Pick<Engine, 'appendEvent'>
  /** The events to write (LIFECYCLE_EVENTS); the others cost nothing. */
  readonly enabled: ReadonlySet<LifecycleEventName>
  /** This process (random at boot, logged): tells backends which instance saw the event. */
  readonly instanceId: string
  readonly logger: EngineLogger
  readonly metrics?: LifecycleMetrics
  /** Writes pending at once beyond which events are dropped (default 1000). */
  readonly maxInFlight?: number
  readonly now?: () => number
}

/**
 * The writer of lifecycle events. The ws layer calls connect, disconnect (every close,
 * the drain's 1012 included), subscribe and unsubscribe; `join` and `leave` are the
 * hook for presence (SPEC §11), which calls them once per user's stay: nothing calls
 * them yet.
 */
export class LifecycleEvents {
  readonly instanceId: string
  readonly #options: LifecycleEventsOptions
  readonly #maxInFlight: number
  readonly #now: () => number
  readonly #pending = new Set<Promise<void>>()
  /** Failing since the last success: logged once per streak, counted always. */
  #failing = false

  constructor (options: LifecycleEventsOptions) {
    this.#options = options
    this.instanceId = options.instanceId
    this.#maxInFlight = options.maxInFlight ?? 1000
    this.#now = options.now ?? Date.now
  }

  /** Writes in flight right now. */
  get inFlight (): number {
    return this.#pending.size
  }

  connect (who: EventSubject): void {
    this.#write('connect', who, {})
  }

  /** `code` and `reason` as the socket closed (1012 SERVER_RESTART on drain, 1006 when dropped). */
  disconnect (who: EventSubject, code: number, reason: string): void {
    this.#write('disconnect', who, { code: String(code), reason })
  }

  /**
   * A connection of a crashed instance (its heartbeat lapsed; channels/channel-presence.ts
   * claims each once cluster-wide): `instanceId` is the instance that held it, as in its
   * `connect`, and `reportedBy` this one. Code 1006, reason INSTANCE_LOST.
   */
  lostDisconnect (lost: EventSubject & { readonly instanceId: string }): void {
    this.#write('disconnect', lost, { code: '1006', reason: 'INSTANCE_LOST', instanceId: lost.instanceId, reportedBy: this.instanceId })
  }

  subscribe (who: EventSubject, channel: string): void {
    this.#write('subscribe', who, { channel })
  }

  unsubscribe (who: EventSubject, channel: string): void {
    this.#write('unsubscribe', who, { channel })
  }

  /** Presence (SPEC §11): a user's first connection entered `channel` (its instance won the join). */
  join (who: EventSubject, channel: string): void {
    this.#write('join', who, { channel })
  }

  /** Presence (SPEC §11): a user's last connection left `channel` for good (its instance won the leave). */
  leave (who: EventSubject, channel: string): void {
    this.#write('leave', who, { channel })
  }

  /** Resolves once every write issued so far has ended (the engine must not close before). */
  async settled (): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending])
  }

  #write (event: LifecycleEventName, who: EventSubject, extra: Record<string, string>): void {
    if (!this.#options.enabled.has(event)) return
    const { metrics } = this.#options
    if (this.#pending.size >= this.#maxInFlight) {
      metrics?.lifecycleEvent(event, 'dropped')
      return
    }
    const fields: EventFields = {
      event,
      userId: who.userId,
      sessionId: who.sessionId,
      connectionId: who.connectionId,
      instanceId: this.instanceId,
      ts: String(this.#now()),
      ...extra
    }
    const pending: Promise<void> = this.#append(event, fields).finally(() => { this.#pending.delete(pending) })
    this.#pending.add(pending)
  }

  async #append (event: LifecycleEventName, fields: EventFields): Promise<void> {
    const { engine, metrics, logger } = this.#options
    try {
      await engine.appendEvent(fields)
      metrics?.lifecycleEvent(event, 'written')
      if (this.#failing) logger.info({ event: 'lifecycle.append_recovered' }, 'lifecycle events are written again')
      this.#failing = false
    } catch (err) {
      metrics?.lifecycleEvent(event, 'failed')
      if (!this.#failing) logger.warn({ event: 'lifecycle.append_failed', err }, 'lifecycle event not written (counted in rtgw_lifecycle_events_total)')
      this.#failing = true
    }
  }
}
