import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Redis, type RedisOptions } from 'ioredis'
import {
  EngineUnavailableError,
  ReadinessSignal,
  decodeTicketRecord,
  encodeTicketRecord,
  type ChannelMessage,
  type Engine,
  type EngineLogger,
  type HistoryRead,
  type InboundMessage,
  type PublishOptions,
  type PublishResult,
  type RelaySettings,
  type TicketRecord
} from './engine.js'
import { parseOffset } from './offsets.js'

const PUBLISH_SCRIPT = readFileSync(new URL('./lua/publish.lua', import.meta.url), 'utf8')
const READ_HISTORY_SCRIPT = readFileSync(new URL('./lua/read-history.lua', import.meta.url), 'utf8')
const APPEND_INBOUND_SCRIPT = readFileSync(new URL('./lua/append-inbound.lua', import.meta.url), 'utf8')

type StreamEntry = [id: string, fields: string[]]

interface RelayCommands {
  publishToChannel (meta: string, stream: string, idempotency: string, data: string, historySize: number,
    ttlSeconds: number, epoch: string, live: string, idempotencyTtlSeconds: number): Promise<[string, number]>
  readChannelHistory (meta: string, stream: string, epoch: string, ttlSeconds: number, sinceEpoch: string,
    sinceSeq: number): Promise<[string, number, number, StreamEntry[]]>
  appendInboundMessage (stream: string, dedupe: string, ttlSeconds: number, maxLength: number, ...fields: string[]): Promise<string | null>
}

const newEpoch = (): string => randomBytes(6).toString('base64url')

export interface RedisEngineOptions {
  readonly url: string
  readonly keyPrefix: string
  /** Upper bound on any one command, so a stalled Redis becomes a 503, not a hang. */
  readonly commandTimeoutMs: number
  readonly logger: EngineLogger
  readonly relay: RelaySettings
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
  readonly #relay: RelaySettings
  /** Pub/sub needs a connection of its own (a subscribed connection runs no other command). */
  readonly #subscriber: Redis
  readonly #liveNames = new Map<string, string>()
  #onMessage: ((message: ChannelMessage) => void) | undefined
  #onControl: ((message: string) => void) | undefined
  readonly #controlChannel: string
  #hasGetDel = true
  #closing = false

  constructor (options: RedisEngineOptions) {
    this.#prefix = options.keyPrefix
    this.#logger = options.logger
    this.#relay = options.relay
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
    this.client.defineCommand('publishToChannel', { numberOfKeys: 3, lua: PUBLISH_SCRIPT })
    this.client.defineCommand('readChannelHistory', { numberOfKeys: 2, lua: READ_HISTORY_SCRIPT })
    this.client.defineCommand('appendInboundMessage', { numberOfKeys: 2, lua: APPEND_INBOUND_SCRIPT })
    this.#subscriber = this.client.duplicate({ connectionName: 'realtime-gateway-sub', enableAutoPipelining: false })
    this.#subscriber.on('message', (name: string, payload: string) => { this.#onLive(name, payload) })
    this.#controlChannel = `${options.keyPrefix}control`
    this.#subscriber.on('ready', () => {
      // Once subscribed, ioredis re-subscribes after every reconnect by itself.
      this.#subscriber.subscribe(this.#controlChannel).catch(() => {})
      this.#onReady()
    })
    this.#subscriber.on('close', () => { this.#onDown('subscriber close') })
    this.#subscriber.on('error', () => {})

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

  async publish (channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    this.#assertReady()
    const keys = this.#channelKeys(channel)
    const idempotent = options.idempotencyKey !== undefined
    const [offset, duplicate] = await this.#command(this.#commands.publishToChannel(
      keys.meta, keys.stream, idempotent ? `${keys.idempotency}${options.idempotencyKey ?? ''}` : keys.meta,
      data, this.#relay.historySize, this.#relay.historyTtlSeconds, newEpoch(), keys.live,
      idempotent ? this.#relay.idempotencyTtlSeconds : 0
    ))
    const position = parseOffset(offset)
    if (position === null) throw new Error(`unexpected offset from Redis: ${offset}`)
    return { ...position, duplicate: duplicate === 1 }
  }

  async readHistory (channel: string, since?: { epoch: string, seq: number }): Promise<HistoryRead> {
    this.#assertReady()
    const keys = this.#channelKeys(channel)
    const [epoch, seq, recovered, entries] = await this.#command(this.#commands.readChannelHistory(
      keys.meta, keys.stream, newEpoch(), this.#relay.historyTtlSeconds, since?.epoch ?? '', since?.seq ?? 0
    ))
    return {
      epoch,
      seq: Number(seq),
      recovered: recovered === 1,
      messages: entries.map(([id, fields]) => ({ channel, epoch, seq: Number.parseInt(id, 10), data: fields[1] ?? 'null' }))
    }
  }

  async appendInbound (message: InboundMessage): Promise<boolean> {
    this.#assertReady()
    const stream = `${this.#prefix}inbound`
    // The stream's own name as hash tag: the dedupe key shares its Cluster slot.
    const dedupe = `${this.#prefix}{${stream}}:seen:${message.sessionId}:${message.id}`
    const id = await this.#command(this.#commands.appendInboundMessage(
      stream, dedupe, this.#relay.idempotencyTtlSeconds, this.#relay.inboundMaxLength,
      'userId', message.userId, 'sessionId', message.sessionId, 'connectionId', message.connectionId, 'id', message.id, 'data', message.data
    ))
    return id !== null
  }

  async broadcastControl (message: string): Promise<void> {
    this.#assertReady()
    await this.#command(this.client.publish(this.#controlChannel, message))
  }

  onControl (listener: (message: string) => void): void {
    this.#onControl = listener
  }

  onChannelMessage (listener: (message: ChannelMessage) => void): void {
    this.#onMessage = listener
  }

  async listen (channel: string): Promise<void> {
    this.#assertReady()
    const live = this.#channelKeys(channel).live
    this.#liveNames.set(live, channel)
    await this.#command(this.#subscriber.subscribe(live))
  }

  async unlisten (channel: string): Promise<void> {
    const live = this.#channelKeys(channel).live
    this.#liveNames.delete(live)
    // Not connected: ioredis forgets it and will not resubscribe it.
    await this.#subscriber.unsubscribe(live).catch(() => {})
  }

  async close (): Promise<void> {
    this.#closing = true
    this.#readiness.set(false)
    for (const connection of [this.client, this.#subscriber]) {
      try {
        await connection.quit()
      } catch {
        // Not connected: nothing to say goodbye to.
        connection.disconnect()
      }
    }
  }

  get #commands (): RelayCommands {
    return this.client as unknown as RelayCommands
  }

  /** One hash tag per channel: every key of a channel lives in one Cluster slot. */
  #channelKeys (channel: string): { meta: string, stream: string, idempotency: string, live: string } {
    const base = `${this.#prefix}{ch:${channel}}`
    return { meta: `${base}:meta`, stream: `${base}:history`, idempotency: `${base}:idem:`, live: `${base}:live` }
  }

  #onLive (name: string, payload: string): void {
    if (name === this.#controlChannel) {
      this.#onControl?.(payload)
      return
    }
    const channel = this.#liveNames.get(name)
    const newline = payload.indexOf('\n')
    const position = parseOffset(payload.slice(0, newline))
    if (channel === undefined || newline === -1 || position === null) return
    this.#onMessage?.({ channel, ...position, data: payload.slice(newline + 1) })
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
      if (this.#closing || this.client.status !== 'ready' || this.#subscriber.status !== 'ready') return
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
