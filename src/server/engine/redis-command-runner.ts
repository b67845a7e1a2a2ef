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
/**
 * A command that timed out while our loop lagged this share of its timeout or more
 * timed out because of us: a 1 s timeout with 200 ms of lag is not a healthy Redis
 * failing to answer, it is a reply we did not get round to reading.
 */
const LAG_SHARE = 0.2
/**
 * Reads that are safe to send again: they change nothing a second run would see
 * differently (read-history only ever creates a channel's epoch once). One of them
 * timing out because of our own stall is sent once more before it is refused: under
 * a burst, one resume read answers a whole batch of subscribes, and refusing it
 * refused hundreds of them (the presence bench's 1000-join burst).
 */
const REPEATABLE_ON_STALL: ReadonlySet<string> = new Set([
  'script:read-history', 'script:presence-read', 'script:user-list', 'script:load-revocations', 'zrangebyscore', 'xrevrange', 'subscribe', 'ssubscribe'
])

/**
 * The event loop's own lag, measured by a ticking timer: each tick that arrives later
 * than due adds the difference. A timer that fires "on time" after a stall tells
 * nothing (it may have been set during the stall); this sums every stall while a
 * command waited. Under a burst the loop is rarely blocked in one piece: it runs long
 * I/O turns back to back (a pub/sub reply batch fanned out to hundreds of sockets),
 * and in the next turn the timers phase runs before the poll phase that would read
 * the reply, so the command's timeout fires with the reply waiting in the socket.
 */
class LoopLag {
  readonly #tickMs: number
  #lastTick = performance.now()
  #totalMs = 0
  #timer: NodeJS.Timeout | undefined

  constructor (tickMs: number) {
    this.#tickMs = tickMs
  }

  /** Lag so far (ms), the current tick's overdue part included; starts ticking on first use. */
  now (): number {
    if (this.#timer === undefined) {
      this.#lastTick = performance.now()
      this.#timer = setInterval(() => { this.#tick() }, this.#tickMs)
      this.#timer.unref()
    }
    return this.#totalMs + Math.max(0, performance.now() - this.#lastTick - this.#tickMs)
  }

  #tick (): void {
    const now = performance.now()
    this.#totalMs += Math.max(0, now - this.#lastTick - this.#tickMs)
    this.#lastTick = now
  }
}

/** Times every command for the observer and turns failures into the engine's two error types. */
export class RedisCommandRunner {
  readonly #commandTimeoutMs: number
  readonly #onCommand: RedisCommandObserver | undefined
  readonly #isOverloaded: () => boolean
  readonly #lag: LoopLag

  constructor (options: RedisCommandRunnerOptions) {
    this.#commandTimeoutMs = options.commandTimeoutMs
    this.#onCommand = options.onCommand
    this.#isOverloaded = options.isOverloaded ?? (() => false)
    this.#lag = new LoopLag(Math.min(100, Math.max(10, Math.floor(options.commandTimeoutMs / 20))))
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
   * except a timeout caused by our own stalled event loop, which is overload (SPEC §13);
   * a repeatable read is sent once more before that overload is reported.
   */
  async run<T> (name: string, command: () => Promise<T>): Promise<T> {
    try {
      return await this.#attempt(name, command)
    } catch (err) {
      if (!(err instanceof EngineOverloadedError) || !REPEATABLE_ON_STALL.has(name)) throw err
      return await this.#attempt(name, command)
    }
  }

  async #attempt<T> (name: string, command: () => Promise<T>): Promise<T> {
    const started = performance.now()
    const lagBefore = this.#lag.now()
    try {
      return await this.timed(name, command)
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      if (message === COMMAND_TIMEOUT_MESSAGE && this.#stalledSince(started, lagBefore)) {
        throw new EngineOverloadedError('event loop stalled while waiting for Redis', { cause: err })
      }
      throw new EngineUnavailableError(message, { cause: err })
    }
  }

  #stalledSince (started: number, lagBefore: number): boolean {
    return performance.now() - started > this.#commandTimeoutMs * LATE_TIMEOUT_FACTOR ||
      this.#lag.now() - lagBefore >= this.#commandTimeoutMs * LAG_SHARE ||
      this.#isOverloaded()
  }
}
