/**
 * Frames the relay writes for replays in one turn of the event loop before it yields
 * (docs/architecture.md, "Resume under an avalanche"). A reconnect avalanche can ask
 * one instance for hundreds of thousands of replayed frames at once (150 resumes of
 * 1000 messages is 150 000); written in one go that stalled the event loop for 2.4 to
 * 3.6 s in test/integration/relay-avalanche.test.ts, with no ping, live message or other
 * channel served meanwhile. Measured there, a warm turn of 500 frames takes 2–3 ms
 * (about 5 µs per frame), up to ~70 ms on a 2-core machine shared with other loads:
 * short enough that pings stay well under a second, while a replay still moves
 * 100 000+ frames a second on an idle core.
 */
export const REPLAY_FRAMES_PER_TURN = 500

/** A replay delivered in slices: `run` writes at most `budget` frames and says how many it wrote. */
export interface ReplayJob {
  run (budget: number): number
  /** True once everything is written (or the replay is no longer wanted). */
  readonly done: boolean
}

/**
 * Runs replay jobs oldest first, at most `framesPerTurn` frames per turn of the event
 * loop, yielding with `setImmediate` between turns so I/O (pings, other sockets, Redis
 * replies) is served in between. A job that arrives while the budget of the current
 * turn is not spent starts at once, so a lone resume is not delayed.
 */
export class ReplayScheduler {
  readonly #framesPerTurn: number
  readonly #jobs: ReplayJob[] = []
  #head = 0
  #spent = 0
  #turnScheduled = false

  constructor (framesPerTurn = REPLAY_FRAMES_PER_TURN) {
    this.#framesPerTurn = framesPerTurn
  }

  /** Jobs not finished yet. */
  get size (): number {
    return this.#jobs.length - this.#head
  }

  add (job: ReplayJob): void {
    this.#jobs.push(job)
    this.#drain()
  }

  #drain (): void {
    for (let job = this.#jobs[this.#head]; job !== undefined && this.#spent < this.#framesPerTurn; job = this.#jobs[this.#head]) {
      // At least 1: a job that cannot write (closed socket) must still make progress.
      this.#spent += Math.max(1, job.run(this.#framesPerTurn - this.#spent))
      if (job.done) this.#head += 1
    }
    if (this.#head === this.#jobs.length) {
      this.#jobs.length = 0
      this.#head = 0
    }
    // The budget is per turn: the next turn starts with a fresh one.
    if (!this.#turnScheduled && this.#spent > 0) {
      this.#turnScheduled = true
      setImmediate(() => {
        this.#turnScheduled = false
        this.#spent = 0
        this.#drain()
      })
    }
  }
}
