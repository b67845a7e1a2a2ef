import { ReadinessSignal, type EngineCheck, type EngineLogger } from './engine.js'
import type { RedisClient } from './redis-connection.js'
import type { RedisCommandRunner } from './redis-command-runner.js'
import type { RedisTopology } from './redis-topology.js'
import { RedisUnreachableLog } from './redis-unreachable-log.js'

/** Sharded pub/sub (SSUBSCRIBE/SPUBLISH) arrived in Redis 7.0; Cluster channel fan-out needs it. */
const SHARDED_PUBSUB_MAJOR = 7
/** How soon a check that could not confirm readiness (version unknown, control SUBSCRIBE refused) runs again. */
const RECHECK_MS = 1000

export interface RedisReadinessOptions {
  readonly client: RedisClient
  /** The same object as `client` on a Cluster. */
  readonly subscriber: RedisClient
  /** Cluster: channels need sharded pub/sub. */
  readonly sharded: boolean
  readonly topology: RedisTopology
  readonly logger: EngineLogger
  readonly runner: RedisCommandRunner
  /** Every instance must hear it: the engine is not ready until it is subscribed. */
  readonly controlChannel: string
  /** Bound on repeated `engine.redis.unreachable` lines (default 30 s). */
  readonly unreachableLogIntervalMs?: number
}

/**
 * When the Redis engine can serve (SPEC §3 /readyz). Readiness follows the
 * connections both ways: it is lost as soon as either drops and comes back once
 * both are up again, the server's version is known to do what the topology needs,
 * and the control channel is subscribed (revocations and remote disconnects arrive
 * there; an instance that cannot hear them must not serve).
 */
export class RedisReadiness {
  readonly #signal = new ReadinessSignal()
  readonly #options: RedisReadinessOptions
  #hasGetDel = true
  #closing = false
  #recheck: NodeJS.Timeout | undefined
  #reportedUnsupported = false
  #reportedControlFailure = false
  /** Why the engine is not ready (SPEC §3 `/readyz` reason): the last error code, or what closed. */
  #reason = 'connecting'

  constructor (options: RedisReadinessOptions) {
    this.#options = options
    const { client, subscriber, logger } = options
    subscriber.on('ready', () => { this.#check() })
    subscriber.on('close', () => { this.#onDown(subscriber === client ? 'close' : 'subscriber close') })
    // The subscriber fails the same way as the client: only the client's errors are reported.
    subscriber.on('error', () => {})
    if (client !== subscriber) {
      client.on('ready', () => { this.#check() })
      client.on('close', () => { this.#onDown('close') })
    }
    client.on('end', () => { this.#onDown('end') })
    // Without a listener ioredis prints every failed reconnect. While ready, an error is
    // news; while not, it is a failed (re)connect attempt: why Redis cannot be reached,
    // logged at a bounded rate.
    const unreachable = new RedisUnreachableLog({ logger, topology: options.topology, intervalMs: options.unreachableLogIntervalMs })
    this.#signal.subscribe((ready) => { if (ready) unreachable.recovered() })
    client.on('error', (err: Error & { code?: unknown }) => {
      if (!this.#signal.ready) this.#reason = reasonOf(err)
      if (this.#signal.ready) logger.error({ event: 'engine.redis.error', err: { message: err.message } }, 'redis error')
      else if (!this.#closing) unreachable.failed(err)
    })
  }

  get ready (): boolean {
    return this.#signal.ready
  }

  /** False on servers older than 6.2 (or of unknown version): tickets are consumed by a script. */
  get hasGetDel (): boolean {
    return this.#hasGetDel
  }

  subscribe (listener: (ready: boolean) => void): () => void {
    return this.#signal.subscribe(listener)
  }

  /** The `redis` check (SPEC §3). */
  check (): EngineCheck {
    return this.#signal.ready
      ? { name: 'redis', ok: true, since: this.#signal.since }
      : { name: 'redis', ok: false, reason: this.#reason, since: this.#signal.since }
  }

  /** A subscriber connection was re-established without a reconnect of the rest: re-sync like after one. */
  resubscribed (): void {
    this.#signal.pulse()
  }

  /** Not ready from now on; no check runs again. */
  close (): void {
    this.#closing = true
    this.#reason = 'closed'
    clearTimeout(this.#recheck)
    this.#signal.set(false)
  }

  #check (): void {
    if (!this.#closing) void this.#confirm()
  }

  async #confirm (): Promise<void> {
    const { client, runner, logger } = this.#options
    let major = 0
    try {
      const info = await runner.timed('info', async () => await client.info('server'))
      const version = /redis_version:(\d+)\.(\d+)/.exec(info)
      major = version === null ? 0 : Number(version[1])
      const minor = version === null ? 0 : Number(version[2])
      this.#hasGetDel = major > 6 || (major === 6 && minor >= 2)
    } catch {
      this.#hasGetDel = false
    }
    if (!this.#connected()) return
    // A Cluster's channels need sharded pub/sub: below Redis 7 (or with the version
    // unknown) the engine stays not ready rather than lose messages, and checks again.
    if (this.#options.sharded && major < SHARDED_PUBSUB_MAJOR) {
      if (major > 0 && !this.#reportedUnsupported) {
        this.#reportedUnsupported = true
        this.#reason = 'REDIS_VERSION'
        logger.error({ event: 'engine.redis.unsupported', major }, 'Redis Cluster below 7.0 has no sharded pub/sub; the gateway needs Redis 7 or later on a Cluster')
      }
      this.#checkAgain(RECHECK_MS * (major > 0 ? 10 : 1))
      return
    }
    if (!await this.#subscribeControl() || !this.#connected()) return
    if (!this.#signal.ready) logger.info({ event: 'engine.redis.ready', topology: this.#options.topology.kind, getdel: this.#hasGetDel }, 'redis ready')
    this.#reportedControlFailure = false
    this.#signal.set(true)
  }

  /**
   * SUBSCRIBE on every (re)connect: ioredis re-subscribes by itself after a reconnect
   * but never says whether that worked. A refusal (an ACL without the channel, a
   * server error) keeps the engine not ready and is tried again.
   */
  async #subscribeControl (): Promise<boolean> {
    try {
      await this.#options.subscriber.subscribe(this.#options.controlChannel)
      return true
    } catch (err) {
      if (this.#closing) return false
      this.#reason = 'CONTROL_SUBSCRIBE'
      if (!this.#reportedControlFailure) {
        this.#reportedControlFailure = true
        this.#options.logger.error({ event: 'engine.redis.control_subscribe_failed', err: { message: err instanceof Error ? err.message : String(err) } },
          'cannot subscribe to the control channel; not ready until it succeeds')
      }
      this.#checkAgain(RECHECK_MS)
      return false
    }
  }

  #connected (): boolean {
    return !this.#closing && this.#options.client.status === 'ready' && this.#options.subscriber.status === 'ready'
  }

  #checkAgain (delayMs: number): void {
    clearTimeout(this.#recheck)
    this.#recheck = setTimeout(() => { this.#check() }, delayMs)
    this.#recheck.unref()
  }

  #onDown (reason: string): void {
    if (this.#signal.ready && !this.#closing) {
      this.#reason = reason
      this.#options.logger.warn({ event: 'engine.redis.down', reason }, 'redis connection lost; reconnecting')
    }
    this.#signal.set(false)
  }
}

/** A short reason for `/readyz`: the socket error code (ECONNREFUSED, ETIMEDOUT...) or the first words of the message. */
function reasonOf (err: Error & { code?: unknown }): string {
  if (typeof err.code === 'string' && err.code !== '') return err.code.slice(0, 40)
  return err.message.split(/[\s:]/, 1)[0]?.slice(0, 40) || 'error'
}
