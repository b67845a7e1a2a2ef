import type { ReadinessCheck, ReadinessInputs } from './readiness.js'

/** Bytes for the checks as JSON text: three checks with reasons need about 300. */
const CHECKS_BYTES = 2048
/** lastTick (f64), then version and length (i32), then the JSON bytes. */
const HEADER_BYTES = 16
const VERSION = 0
const LENGTH = 1

/**
 * The readiness inputs and the main loop's last sign of life, in shared memory: the
 * main thread writes them, the probe thread reads them without a message, so a probe
 * is answered even while the main loop is busy with a reconnect wave. The checks
 * (SPEC §3: names, reasons, since) are JSON text in a fixed-size area behind a
 * version counter that is odd while a write is under way (a seqlock): a read that
 * saw it change reads again, so the thread never answers half of one update.
 */
export class ProbeState {
  readonly buffer: SharedArrayBuffer
  readonly #header: Int32Array
  readonly #lastTick: Float64Array
  readonly #bytes: Uint8Array
  readonly #encoder = new TextEncoder()
  readonly #decoder = new TextDecoder()

  constructor (buffer: SharedArrayBuffer = new SharedArrayBuffer(HEADER_BYTES + CHECKS_BYTES)) {
    this.buffer = buffer
    this.#lastTick = new Float64Array(buffer, 0, 1)
    this.#header = new Int32Array(buffer, 8, 2)
    this.#bytes = new Uint8Array(buffer, HEADER_BYTES, CHECKS_BYTES)
  }

  /** Called from the main thread: its loop is alive, and this is what readiness is. */
  update (inputs: ReadinessInputs, now: number = Date.now()): void {
    const text = this.#encoder.encode(JSON.stringify(inputs.checks))
    // Cannot happen with the checks there are; never write past the area.
    const length = text.length <= CHECKS_BYTES ? text.length : 0
    Atomics.add(this.#header, VERSION, 1)
    this.#bytes.set(text.subarray(0, length))
    Atomics.store(this.#header, LENGTH, length)
    Atomics.add(this.#header, VERSION, 1)
    this.#lastTick[0] = now
  }

  read (): ReadinessInputs & { readonly lastTickMs: number } {
    for (;;) {
      const before = Atomics.load(this.#header, VERSION)
      if (before % 2 === 1) continue
      const length = Atomics.load(this.#header, LENGTH)
      // A copy: TextDecoder does not read shared memory, and the writer may go on meanwhile.
      const copy = this.#bytes.slice(0, length)
      if (Atomics.load(this.#header, VERSION) !== before) continue
      const checks = length === 0 ? [] : JSON.parse(this.#decoder.decode(copy)) as ReadinessCheck[]
      return { checks, lastTickMs: this.#lastTick[0] ?? 0 }
    }
  }
}
