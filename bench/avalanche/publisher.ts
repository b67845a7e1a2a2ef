import { Agent, request } from 'node:http'
import { now, type PublishedEntry, type Tally } from './protocol.js'

const ATTEMPT_TIMEOUT_MS = 5000
const MAX_ATTEMPTS = 20

export interface PublisherReport {
  readonly attempted: number
  readonly published: number
  /** Sequence numbers for which no attempt got a 200. */
  readonly failed: readonly number[]
  /** Every attempt's outcome: HTTP status or `network`/`timeout`. */
  readonly attempts: Tally
  readonly retried: number
  readonly seconds: number
  readonly achievedRate: number
  /** Longest time from one message's due time to the next successful publish. */
  readonly maxGapMs: number
  readonly p99LatencyMs: number
  readonly maxLatencyMs: number
}

/**
 * A backend publishing to the shared channel through the balancer with
 * `POST /v1/publish` (service token, scope gateway:publish), one message at a time
 * at a steady rate, `data: { seq, at }`. A failed attempt is retried with the same
 * idempotencyKey, so a retry that races a landed first attempt never makes a
 * second message (SPEC §3). One at a time keeps offsets in `seq` order. When it
 * falls behind (retries during a kill) it skips ahead instead of bursting.
 */
export class Publisher {
  readonly entries: PublishedEntry[] = []
  epoch: string | undefined
  readonly #baseUrl: URL
  readonly #token: string
  readonly #channel: string
  readonly #intervalMs: number
  readonly #runId: string
  readonly #agent = new Agent({ keepAlive: true, maxSockets: 2 })
  readonly #failed: number[] = []
  readonly #attempts: Tally = {}
  readonly #latencies: number[] = []
  #retried = 0
  #seq = 0
  #running = false
  #loop: Promise<void> | undefined
  #startedAt = 0
  #stoppedAt = 0
  #lastSuccessAt = 0
  #maxGapMs = 0

  constructor (options: { baseUrl: string, token: string, channel: string, rate: number, runId: string }) {
    this.#baseUrl = new URL(options.baseUrl)
    this.#token = options.token
    this.#channel = options.channel
    this.#intervalMs = 1000 / options.rate
    this.#runId = options.runId
  }

  /** The highest offset seq published so far (-1 before the first). */
  get lastOffsetSeq (): number {
    return this.entries[this.entries.length - 1]?.offsetSeq ?? -1
  }

  start (): void {
    this.#running = true
    this.#startedAt = now()
    this.#lastSuccessAt = this.#startedAt
    this.#loop = this.#run()
  }

  async stop (): Promise<PublisherReport> {
    this.#running = false
    await this.#loop
    this.#stoppedAt = now()
    this.#agent.destroy()
    const seconds = (this.#stoppedAt - this.#startedAt) / 1000
    const sorted = [...this.#latencies].sort((a, b) => a - b)
    return {
      attempted: this.#seq,
      published: this.entries.length,
      failed: this.#failed,
      attempts: this.#attempts,
      retried: this.#retried,
      seconds,
      achievedRate: this.entries.length / seconds,
      maxGapMs: this.#maxGapMs,
      p99LatencyMs: sorted[Math.max(0, Math.ceil(sorted.length * 0.99) - 1)] ?? Number.NaN,
      maxLatencyMs: sorted[sorted.length - 1] ?? Number.NaN
    }
  }

  async #run (): Promise<void> {
    let due = performance.now()
    while (this.#running) {
      const wait = due - performance.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      if (!this.#running) return
      await this.#publish(this.#seq++)
      due = Math.max(due + this.#intervalMs, performance.now() - this.#intervalMs)
    }
  }

  async #publish (seq: number): Promise<void> {
    const started = performance.now()
    const body = JSON.stringify({ channel: this.#channel, data: { seq, at: now() }, idempotencyKey: `${this.#runId}-${seq}` })
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const outcome = await this.#post(body)
      this.#attempts[outcome.key] = (this.#attempts[outcome.key] ?? 0) + 1
      if (outcome.offset !== undefined) {
        const separator = outcome.offset.lastIndexOf(':')
        this.epoch ??= outcome.offset.slice(0, separator)
        this.entries.push({ seq, offsetSeq: Number(outcome.offset.slice(separator + 1)) })
        this.#latencies.push(performance.now() - started)
        const at = now()
        this.#maxGapMs = Math.max(this.#maxGapMs, at - this.#lastSuccessAt)
        this.#lastSuccessAt = at
        return
      }
      if (attempt === MAX_ATTEMPTS) break
      // The message keeps its place: retry soon, with the same key.
      this.#retried += 1
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 100 * attempt)))
    }
    this.#failed.push(seq)
  }

  async #post (body: string): Promise<{ key: string, offset?: string }> {
    return await new Promise((resolve) => {
      const req = request({
        host: this.#baseUrl.hostname,
        port: this.#baseUrl.port,
        method: 'POST',
        path: '/v1/publish',
        agent: this.#agent,
        timeout: ATTEMPT_TIMEOUT_MS,
        headers: { authorization: `Bearer ${this.#token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }
      }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
        res.on('end', () => {
          const status = res.statusCode ?? 0
          if (status !== 200) { resolve({ key: String(status) }); return }
          try {
            const answer = JSON.parse(Buffer.concat(chunks).toString()) as { offset?: unknown }
            resolve(typeof answer.offset === 'string' ? { key: '200', offset: answer.offset } : { key: '200-without-offset' })
          } catch {
            resolve({ key: '200-unparsable' })
          }
        })
        res.on('error', () => { resolve({ key: 'network' }) })
      })
      req.on('timeout', () => { req.destroy(); resolve({ key: 'timeout' }) })
      req.on('error', () => { resolve({ key: 'network' }) })
      req.end(body)
    })
  }
}
