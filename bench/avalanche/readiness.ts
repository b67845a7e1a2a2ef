import { httpGet, type GatewayProcess } from './gateway-process.js'
import { now } from './protocol.js'

/** One poll of one instance's /readyz. */
export interface ReadyzPoll {
  readonly instance: string
  readonly pid: number | undefined
  /** Epoch ms when the poll was sent. */
  readonly at: number
  /** HTTP status, or `refused` / `timeout` / `error` when nothing answered. */
  readonly outcome: number | 'refused' | 'timeout' | 'error'
  /** Latency of an answer (any status). */
  readonly ms?: number
}

const POLL_TIMEOUT_MS = 1000

/**
 * Polls every instance's /readyz directly (not through the balancer) every
 * `intervalMs` for the whole run, on a fresh connection each time, like a kubelet.
 * Each instance is polled by its own loop, so a slow instance never delays the
 * other's polls. `onChange` hears when an instance's readiness flips (the balancer
 * follows it, as an endpoint controller would).
 */
export class ReadinessPoller {
  readonly polls: ReadyzPoll[] = []
  readonly #gateways: readonly GatewayProcess[]
  readonly #intervalMs: number
  readonly #onChange: (ready: ReadonlyMap<string, boolean>) => void
  readonly #ready = new Map<string, boolean>()
  #running = false
  #loops: Array<Promise<void>> = []

  constructor (gateways: readonly GatewayProcess[], intervalMs: number, onChange: (ready: ReadonlyMap<string, boolean>) => void) {
    this.#gateways = gateways
    this.#intervalMs = intervalMs
    this.#onChange = onChange
    for (const gateway of gateways) this.#ready.set(gateway.name, true)
  }

  start (): void {
    if (this.#running) return
    this.#running = true
    this.#loops = this.#gateways.map(async (gateway) => { await this.#loop(gateway) })
  }

  async stop (): Promise<void> {
    this.#running = false
    await Promise.all(this.#loops)
  }

  async #loop (gateway: GatewayProcess): Promise<void> {
    while (this.#running) {
      const started = performance.now()
      const at = now()
      const pid = gateway.running ? gateway.pid : undefined
      let poll: ReadyzPoll
      try {
        const answer = await httpGet(gateway.probePort, '/readyz', POLL_TIMEOUT_MS)
        poll = { instance: gateway.name, pid, at, outcome: answer.status, ms: answer.ms }
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        poll = { instance: gateway.name, pid, at, outcome: code === 'ECONNREFUSED' ? 'refused' : code === 'TIMEOUT' ? 'timeout' : 'error' }
      }
      this.polls.push(poll)
      // A timeout is not a verdict: a busy instance stays in rotation until it answers 503 or is gone.
      const ready = poll.outcome === 'timeout' ? this.#ready.get(gateway.name) ?? true : poll.outcome === 200
      if (this.#ready.get(gateway.name) !== ready) {
        this.#ready.set(gateway.name, ready)
        this.#onChange(this.#ready)
      }
      const wait = this.#intervalMs - (performance.now() - started)
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    }
  }
}
