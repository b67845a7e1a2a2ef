import type { GatewayClientError } from './errors.js'

/** Callers waiting for one outcome (the connection open, a channel confirmed), settled together. */
export class Waiters<T> {
  #waiting: Array<{ readonly resolve: (value: T) => void, readonly reject: (error: GatewayClientError) => void }> = []

  async wait (): Promise<T> {
    return await new Promise<T>((resolve, reject) => { this.#waiting.push({ resolve, reject }) })
  }

  resolveAll (value: T): void {
    for (const waiter of this.#take()) waiter.resolve(value)
  }

  rejectAll (error: GatewayClientError): void {
    for (const waiter of this.#take()) waiter.reject(error)
  }

  // Taken before settling: a settled caller that waits again waits for the next outcome.
  #take (): Array<{ readonly resolve: (value: T) => void, readonly reject: (error: GatewayClientError) => void }> {
    const waiting = this.#waiting
    this.#waiting = []
    return waiting
  }
}
