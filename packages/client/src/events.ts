/**
 * A minimal typed event emitter with an error boundary: a listener that throws is
 * reported to `onListenerError` and the remaining listeners still run, so one bad
 * app handler never breaks the connection that called it (SPEC §6).
 */
export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<(payload: never) => void>>()
  readonly #onListenerError: (err: unknown, event: keyof Events) => void

  constructor (onListenerError: (err: unknown, event: keyof Events) => void) {
    this.#onListenerError = onListenerError
  }

  /** Adds a listener; returns the function that removes it. */
  on<Name extends keyof Events>(event: Name, listener: (payload: Events[Name]) => void): () => void {
    let listeners = this.#listeners.get(event)
    if (listeners === undefined) {
      listeners = new Set()
      this.#listeners.set(event, listeners)
    }
    listeners.add(listener)
    return () => { this.off(event, listener) }
  }

  off<Name extends keyof Events>(event: Name, listener: (payload: Events[Name]) => void): void {
    this.#listeners.get(event)?.delete(listener)
  }

  emit<Name extends keyof Events>(event: Name, payload: Events[Name]): void {
    const listeners = this.#listeners.get(event)
    if (listeners === undefined) return
    for (const listener of [...listeners] as Array<(payload: Events[Name]) => void>) {
      try {
        listener(payload)
      } catch (err) {
        this.#onListenerError(err, event)
      }
    }
  }
}
