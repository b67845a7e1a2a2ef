import type { ReadinessInputs } from './readiness.js'

const ENGINE_READY = 0
const DRAINING = 1

/**
 * The readiness inputs and the main loop's last sign of life, in shared memory: the
 * main thread writes them, the probe thread reads them without a message, so a probe
 * is answered even while the main loop is busy with a reconnect wave.
 */
export class ProbeState {
  readonly buffer: SharedArrayBuffer
  readonly #flags: Int32Array
  readonly #lastTick: Float64Array

  constructor (buffer: SharedArrayBuffer = new SharedArrayBuffer(16)) {
    this.buffer = buffer
    this.#lastTick = new Float64Array(buffer, 0, 1)
    this.#flags = new Int32Array(buffer, 8, 2)
  }

  /** Called from the main thread: its loop is alive, and this is what readiness is. */
  update (inputs: ReadinessInputs, now: number = Date.now()): void {
    Atomics.store(this.#flags, ENGINE_READY, inputs.engineReady ? 1 : 0)
    Atomics.store(this.#flags, DRAINING, inputs.draining ? 1 : 0)
    this.#lastTick[0] = now
  }

  read (): ReadinessInputs & { readonly lastTickMs: number } {
    return {
      engineReady: Atomics.load(this.#flags, ENGINE_READY) === 1,
      draining: Atomics.load(this.#flags, DRAINING) === 1,
      lastTickMs: this.#lastTick[0] ?? 0
    }
  }
}
