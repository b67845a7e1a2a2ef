/**
 * The wait between attempts, cut short by `wake()`: a page coming back online should
 * not sit out a minute of backoff, and a closed client should not wait at all.
 */
export class Pause {
  #wake: (() => void) | undefined

  async wait (ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, ms)
      function finish (): void {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = finish
    })
    this.#wake = undefined
  }

  /** Ends the wait in progress, if any. */
  wake (): void {
    this.#wake?.()
  }
}
