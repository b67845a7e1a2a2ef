import { Redis, type RedisOptions } from 'ioredis'
import {
  EngineUnavailableError,
  ReadinessSignal,
  decodeTicketRecord,
  encodeTicketRecord,
  type Engine,
  type EngineLogger,
  type TicketRecord
} from './engine.js'

export interface RedisEngineOptions {
  readonly url: string
  readonly keyPrefix: string
  /** Upper bound on any one command, so a stalled Redis becomes a 503, not a hang. */
  readonly commandTimeoutMs: number
  readonly logger: EngineLogger
}

/** GETDEL arrived in Redis 6.2; older servers get the same atomicity from a script. */
const CONSUME_SCRIPT = "local v = redis.call('GET', KEYS[1]); if v then redis.call('DEL', KEYS[1]) end; return v"

/** Reconnect delay: grows to 2 s with jitter so a fleet does not reconnect in lockstep. */
function reconnectDelay (attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt, 5), 2000) + Math.floor(Math.random() * 100)
}

/**
 * The Redis engine (ioredis). The client is configured to fail fast rather than
 * wait (redis/ioredis#285): no offline queue, no per-command retries, a command
 * timeout. It keeps reconnecting forever in the background and readiness follows
 * the connection both ways, so the gateway boots and serves (503s) while Redis is
 * down and recovers without a restart (SPEC §3 /readyz).
 */
export class RedisEngine implements Engine {
  readonly kind = 'redis' as const
  /** Exposed for infrastructure that speaks Redis itself (the rate-limit store). */
  readonly client: Redis
  readonly #prefix: string
  readonly #readiness = new ReadinessSignal()
  readonly #logger: EngineLogger
  #hasGetDel = true
  #closing = false

  constructor (options: RedisEngineOptions) {
    this.#prefix = options.keyPrefix
    this.#logger = options.logger
    const redisOptions: RedisOptions = {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs,
      connectTimeout: Math.max(options.commandTimeoutMs, 2000),
      retryStrategy: reconnectDelay,
      // Many concurrent requests share a few socket writes: less CPU per ticket.
      enableAutoPipelining: true,
      connectionName: 'realtime-gateway'
    }
    this.client = new Redis(options.url, redisOptions)
    this.client.defineCommand('consumeTicketScript', { numberOfKeys: 1, lua: CONSUME_SCRIPT })

    this.client.on('ready', () => { this.#onReady() })
    this.client.on('close', () => { this.#onDown('close') })
    this.client.on('end', () => { this.#onDown('end') })
    // Without a listener ioredis prints every failed reconnect; state changes are logged instead.
    this.client.on('error', (err: Error) => {
      if (this.#readiness.ready) this.#logger.error({ event: 'engine.redis.error', err: { message: err.message } }, 'redis error')
    })
  }

  isReady (): boolean {
    return this.#readiness.ready
  }

  onReadyChange (listener: (ready: boolean) => void): () => void {
    return this.#readiness.subscribe(listener)
  }

  async storeTicket (ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void> {
    this.#assertReady()
    await this.#command(this.client.set(this.#ticketKey(ticketHash), encodeTicketRecord(record), 'EX', storageTtlSeconds))
  }

  async consumeTicket (ticketHash: string): Promise<TicketRecord | null> {
    this.#assertReady()
    const key = this.#ticketKey(ticketHash)
    const value = await this.#command(this.#hasGetDel
      ? this.client.getdel(key)
      : (this.client as Redis & { consumeTicketScript (key: string): Promise<string | null> }).consumeTicketScript(key))
    return value === null ? null : decodeTicketRecord(value)
  }

  async close (): Promise<void> {
    this.#closing = true
    this.#readiness.set(false)
    try {
      await this.client.quit()
    } catch {
      // Not connected: nothing to say goodbye to.
      this.client.disconnect()
    }
  }

  #ticketKey (ticketHash: string): string {
    return `${this.#prefix}ticket:${ticketHash}`
  }

  #assertReady (): void {
    if (!this.#readiness.ready) throw new EngineUnavailableError('redis is not ready')
  }

  /** Any command failure means the engine could not serve: one error type for callers. */
  async #command<T> (pending: Promise<T>): Promise<T> {
    try {
      return await pending
    } catch (err) {
      throw new EngineUnavailableError((err as Error).message, { cause: err })
    }
  }

  #onReady (): void {
    if (this.#closing) return
    this.client.info('server').then((info) => {
      const version = /redis_version:(\d+)\.(\d+)/.exec(info)
      const [major, minor] = version === null ? [0, 0] : [Number(version[1]), Number(version[2])]
      this.#hasGetDel = major > 6 || (major === 6 && minor >= 2)
    }, () => { this.#hasGetDel = false }).finally(() => {
      if (this.#closing || this.client.status !== 'ready') return
      this.#logger.info({ event: 'engine.redis.ready', getdel: this.#hasGetDel }, 'redis ready')
      this.#readiness.set(true)
    })
  }

  #onDown (reason: string): void {
    if (this.#readiness.ready && !this.#closing) {
      this.#logger.warn({ event: 'engine.redis.down', reason }, 'redis connection lost; reconnecting')
    }
    this.#readiness.set(false)
  }
}
