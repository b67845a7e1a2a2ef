export interface BackoffOptions {
  /** First ceiling, doubled each attempt (SPEC §6: 1 s). */
  readonly initialMs?: number
  /** Largest ceiling (SPEC §6: 16 s). */
  readonly maxMs?: number
  /** Injected for tests; Math.random otherwise. */
  readonly random?: () => number
}

/**
 * Reconnect delays with exponential backoff and full jitter: attempt n waits a
 * uniform random time in [0, min(max, initial·2ⁿ)). Full jitter spreads a crowd of
 * clients that lost the same instance instead of having them return in waves.
 */
export class Backoff {
  readonly #initialMs: number
  readonly #maxMs: number
  readonly #random: () => number
  #attempt = 0

  constructor (options: BackoffOptions = {}) {
    this.#initialMs = options.initialMs ?? 1000
    this.#maxMs = options.maxMs ?? 16_000
    this.#random = options.random ?? Math.random
  }

  /** Attempts made since the last reset. */
  get attempts (): number {
    return this.#attempt
  }

  /** The delay before the next attempt, counting it. */
  next (): number {
    const ceiling = Math.min(this.#maxMs, this.#initialMs * 2 ** Math.min(this.#attempt, 30))
    this.#attempt += 1
    return Math.floor(this.#random() * ceiling)
  }

  reset (): void {
    this.#attempt = 0
  }
}
