import { EngineOverloadedError, EngineUnavailableError } from './engine.js'

/** Observes each Redis command the engine issues once it completes (metrics). */
export type RedisCommandObserver = (command: string, durationMs: number, ok: boolean) => void

export interface RedisCommandRunnerOptions {
  /** The clients' `commandTimeout`: a timeout much later than this was our event loop's stall. */
  readonly commandTimeoutMs: number
  /**
   * Called after every command completes, with a bounded set of names (a Redis
   * command such as `set`, or `script:<name>` for the Lua scripts).
   */
  readonly onCommand?: RedisCommandObserver
  /**
   * True while this process is overloaded (admission control's view of the event
   * loop). A command timeout then is reported as overload, not as Redis down.
   */
  readonly isOverloaded?: () => boolean
}

/** ioredis' error for a command that outlived `commandTimeout`. */
const COMMAND_TIMEOUT_MESSAGE = 'Command timed out'
/**
 * A timeout that fired this much later than set means the timer itself waited for
 * the event loop: the loop stalled, and the reply may well have been there.
 */
const LATE_TIMEOUT_FACTOR = 1.5

/** Times every command for the observer and turns failures into the engine's two error types. */
export class RedisCommandRunner {
  readonly #commandTimeoutMs: number
  readonly #onCommand: RedisCommandObserver | undefined
  readonly #isOverloaded: () => boolean

  constructor (options: RedisCommandRunnerOptions) {
    this.#commandTimeoutMs = options.commandTimeoutMs
    this.#onCommand = options.onCommand
    this.#isOverloaded = options.isOverloaded ?? (() => false)
  }

  /** Runs one command and reports it to the observer; errors pass through unchanged. */
  async timed<T> (name: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now()
    let ok = false
    try {
      const result = await run()
      ok = true
      return result
    } finally {
      if (this.#onCommand !== undefined) {
        try {
          this.#onCommand(name, performance.now() - started, ok)
        } catch {
          // An observer's failure is not the command's.
        }
      }
    }
  }

  /**
   * Any command failure means the engine could not serve: one error type for callers,
   * except a timeout caused by our own stalled event loop, which is overload (SPEC §13).
   */
  async run<T> (name: string, command: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await this.timed(name, command)
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (message === COMMAND_TIMEOUT_MESSAGE && this.#stalledSince(started)) {
        throw new EngineOverloadedError('event loop stalled while waiting for Redis', { cause: err })
      }
      throw new EngineUnavailableError(message, { cause: err })
    }
  }

  #stalledSince (started: number): boolean {
    return performance.now() - started > this.#commandTimeoutMs * LATE_TIMEOUT_FACTOR || this.#isOverloaded()
  }
}
