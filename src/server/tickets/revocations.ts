import type { Engine, RevocationTarget } from '../engine/engine.js'

/** Ended bans are ignored at once; this only bounds how long they take up memory. */
const SWEEP_INTERVAL_MS = 60_000

/** The target a `/v1/disconnect` body or control message names (exactly one of the two is set). */
export function revocationTargetOf (named: { readonly userId?: string, readonly sessionId?: string }): RevocationTarget | undefined {
  if (named.userId !== undefined) return { kind: 'user', id: named.userId }
  if (named.sessionId !== undefined) return { kind: 'session', id: named.sessionId }
  return undefined
}

/**
 * This instance's mirror of the bans (SPEC §3: `/v1/disconnect` with `revokeSeconds`).
 * The engine holds them for every instance; the mirror is loaded whenever the engine
 * becomes ready (boot, and again after every reconnect, when control messages may
 * have been missed) and then kept current by the disconnect control messages. So
 * issuing and consuming a ticket check a ban with two map lookups and no Redis round
 * trip. Deadlines are on this instance's clock: a loaded ban arrives as "time left"
 * by the engine's clock, a broadcast one as its length, so clock skew between
 * instances never shortens a ban.
 */
export class Revocations {
  readonly #engine: Engine
  readonly #now: () => number
  /** Banned user ids and session ids → end of the ban (epoch ms, this instance's clock). */
  readonly #users = new Map<string, number>()
  readonly #sessions = new Map<string, number>()
  readonly #learned = new Set<(target: RevocationTarget) => void>()
  #loaded = false
  #loading: Promise<void> | undefined
  /** Bumped at every readiness flip: a load started before it is stale. */
  #generation = 0
  #lastSweep: number

  constructor (options: { engine: Engine, now?: () => number }) {
    this.#engine = options.engine
    this.#now = options.now ?? Date.now
    this.#lastSweep = this.#now()
    this.#engine.onReadyChange((ready) => {
      // While the engine is down no ticket is issued or consumed anyway; once it is
      // back, the mirror is trusted again only after a fresh load.
      this.#generation += 1
      this.#loaded = false
      this.#loading = undefined
      if (ready) this.#load().catch(() => {})
    })
    if (this.#engine.isReady()) this.#load().catch(() => {})
  }

  /**
   * Undefined when the mirror is current (the hot path: no promise, no tick).
   * Otherwise the load in flight, started if need be; it rejects with
   * EngineUnavailableError when the engine cannot answer (a 503, never a hang).
   */
  pending (): Promise<void> | undefined {
    if (this.#loaded) return undefined
    return this.#loading ?? this.#load()
  }

  /** True while a ban of the user or of the session is in force. */
  isRevoked (userId: string, sessionId: string): boolean {
    return this.#inForce(this.#users, userId) || this.#inForce(this.#sessions, sessionId)
  }

  /** A ban broadcast by the instance that stored it: in force for `durationMs` from now. */
  remember (target: RevocationTarget, durationMs: number): void {
    this.#remember(target, this.#now() + durationMs)
  }

  /**
   * Called with each ban a load found that this instance had not heard of: its
   * control message was lost (pub/sub reconnect), so the hub closes matching sockets.
   */
  onLearned (listener: (target: RevocationTarget) => void): void {
    this.#learned.add(listener)
  }

  #load (): Promise<void> {
    const loading = this.#read(this.#generation).finally(() => {
      if (this.#loading === loading) this.#loading = undefined
    })
    this.#loading = loading
    return loading
  }

  async #read (generation: number): Promise<void> {
    const stored = await this.#engine.loadRevocations()
    if (generation !== this.#generation) {
      // The engine flipped meanwhile: what was read may be stale, the newer load decides.
      await this.pending()
      return
    }
    const now = this.#now()
    for (const { target, remainingMs } of stored) {
      if (this.#remember(target, now + remainingMs)) {
        for (const listener of this.#learned) listener(target)
      }
    }
    this.#loaded = true
  }

  /** Keeps the later of two deadlines; true when the target was not banned here before. */
  #remember (target: RevocationTarget, until: number): boolean {
    const now = this.#now()
    if (now - this.#lastSweep > SWEEP_INTERVAL_MS) this.#sweep(now)
    const deadlines = target.kind === 'user' ? this.#users : this.#sessions
    const known = deadlines.get(target.id)
    if (known === undefined || known <= now) {
      deadlines.set(target.id, until)
      return true
    }
    if (known < until) deadlines.set(target.id, until)
    return false
  }

  #inForce (deadlines: Map<string, number>, id: string): boolean {
    if (deadlines.size === 0) return false
    const until = deadlines.get(id)
    if (until === undefined) return false
    if (until > this.#now()) return true
    deadlines.delete(id)
    return false
  }

  #sweep (now: number): void {
    this.#lastSweep = now
    for (const deadlines of [this.#users, this.#sessions]) {
      for (const [id, until] of deadlines) {
        if (until <= now) deadlines.delete(id)
      }
    }
  }
}
