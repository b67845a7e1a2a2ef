/**
 * Per-connection message rate (SPEC §5: flooding → 4429). A token bucket checked
 * synchronously on every frame: the generic rate-limit libraries are asynchronous
 * and keyed, which is the wrong shape for a per-socket hot path with no shared state.
 */
export class TokenBucket {
  #tokens: number
  #updatedAt: number
  readonly #capacity: number
  readonly #refillPerMs: number
  readonly #now: () => number

  constructor (options: { perSecond: number, burst: number, now?: () => number }) {
    this.#capacity = options.burst
    this.#refillPerMs = options.perSecond / 1000
    this.#now = options.now ?? Date.now
    this.#tokens = options.burst
    this.#updatedAt = this.#now()
  }

  /** Takes one token; false when the bucket is empty. */
  take (): boolean {
    const now = this.#now()
    this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#updatedAt) * this.#refillPerMs)
    this.#updatedAt = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}
