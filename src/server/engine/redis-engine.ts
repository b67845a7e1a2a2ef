import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  EngineOverloadedError,
  EngineUnavailableError,
  ReadinessSignal,
  decodeTicketRecord,
  encodeTicketRecord,
  type ChannelMessage,
  type CounterHit,
  type Engine,
  type EngineLogger,
  type HistoryRead,
  type InboundMessage,
  type PublishOptions,
  type PublishResult,
  type RelaySettings,
  type RevocationTarget,
  type StoredRevocation,
  type TicketRecord
} from './engine.js'
import { parseOffset } from '../../protocol/offsets.js'
import { createRedisConnections, type RedisClient } from './redis-connection.js'
import type { RedisTopology } from './redis-topology.js'
import { RedisUnreachableLog } from './redis-unreachable-log.js'

const PUBLISH_SCRIPT = readFileSync(new URL('./lua/publish.lua', import.meta.url), 'utf8')
const READ_HISTORY_SCRIPT = readFileSync(new URL('./lua/read-history.lua', import.meta.url), 'utf8')
const APPEND_INBOUND_SCRIPT = readFileSync(new URL('./lua/append-inbound.lua', import.meta.url), 'utf8')
const STORE_REVOCATION_SCRIPT = readFileSync(new URL('./lua/store-revocation.lua', import.meta.url), 'utf8')
const LOAD_REVOCATIONS_SCRIPT = readFileSync(new URL('./lua/load-revocations.lua', import.meta.url), 'utf8')
const COUNT_HIT_SCRIPT = readFileSync(new URL('./lua/count-hit.lua', import.meta.url), 'utf8')

type StreamEntry = [id: string, fields: string[]]

interface RelayCommands {
  publishToChannel (meta: string, stream: string, idempotency: string, data: string, historySize: number,
    ttlSeconds: number, epoch: string, live: string, idempotencyTtlSeconds: number, sharded: '0' | '1'): Promise<[string, number]>
  readChannelHistory (meta: string, stream: string, epoch: string, ttlSeconds: number, sinceEpoch: string,
    sinceSeq: number): Promise<[string, number, number, StreamEntry[]]>
  appendInboundMessage (stream: string, dedupe: string, ttlSeconds: number, maxLength: number, ...fields: string[]): Promise<string | null>
  consumeTicketScript (key: string): Promise<string | null>
  storeRevocationScript (set: string, member: string, seconds: number): Promise<number>
  loadRevocationsScript (set: string): Promise<Array<string | number>>
  countHitScript (counter: string, windowMs: number): Promise<[number, number]>
}

const newEpoch = (): string => randomBytes(6).toString('base64url')

/** Observes each Redis command the engine issues once it completes (metrics). */
export type RedisCommandObserver = (command: string, durationMs: number, ok: boolean) => void

interface RedisEngineSettings {
  readonly keyPrefix: string
  /** Upper bound on any one command, so a stalled Redis becomes a 503, not a hang. */
  readonly commandTimeoutMs: number
  readonly logger: EngineLogger
  readonly relay: RelaySettings
  /**
   * Called after every command completes, with a bounded set of names (a Redis
   * command such as `set`, or `script:<name>` for the Lua scripts). Never throws
   * into the engine.
   */
  readonly onCommand?: RedisCommandObserver
  /**
   * True while this process is overloaded (admission control's view of the event
   * loop). A command timeout then is reported as overload, not as Redis down.
   */
  readonly isOverloaded?: () => boolean
  /** Bound on repeated `engine.redis.unreachable` lines while Redis cannot be reached (default 30 s). */
  readonly unreachableLogIntervalMs?: number
}

/** ioredis' error for a command that outlived `commandTimeout`. */
const COMMAND_TIMEOUT_MESSAGE = 'Command timed out'
/**
 * A timeout that fired this much later than set means the timer itself waited for
 * the event loop: the loop stalled, and the reply may well have been there.
 */
const LATE_TIMEOUT_FACTOR = 1.5

/** Where Redis is: a standalone URL (shorthand), or any topology (docs/redis.md). */
export type RedisEngineOptions = RedisEngineSettings & (
  | { readonly url: string, readonly topology?: undefined }
  | { readonly topology: RedisTopology, readonly url?: undefined })

/** GETDEL arrived in Redis 6.2; older servers get the same atomicity from a script. */
const CONSUME_SCRIPT = "local v = redis.call('GET', KEYS[1]); if v then redis.call('DEL', KEYS[1]) end; return v"

/** Sharded pub/sub (SSUBSCRIBE/SPUBLISH) arrived in Redis 7.0; Cluster channel fan-out needs it. */
const SHARDED_PUBSUB_MAJOR = 7
/** How soon a Cluster whose version could not be confirmed is checked again. */
const RECHECK_MS = 1000

/**
 * The Redis engine (ioredis), on a standalone server, behind Sentinel, or on a
 * Cluster (redis-connection.ts builds the clients). The clients fail fast rather
 * than wait (redis/ioredis#285): no offline queue, no per-command retries, a
 * command timeout. They keep reconnecting forever in the background and readiness
 * follows the connection both ways, so the gateway boots and serves (503s) while
 * Redis is down and recovers without a restart, Sentinel failovers included
 * (SPEC §3 /readyz).
 *
 * Every key of a channel carries the hash tag `{ch:<channel>}`, and every script
 * and multi-key command touches one hash slot (docs/redis.md), so the same code runs
 * on a Cluster. There, channel fan-out uses sharded pub/sub; the control channel
 * stays on PUBLISH because every instance must hear it.
 */
export class RedisEngine implements Engine {
  readonly kind = 'redis' as const
  /** Exposed for infrastructure that speaks Redis itself (the rate-limit store). */
  readonly client: RedisClient
  readonly topology: RedisTopology['kind']
  readonly #prefix: string
  readonly #readiness = new ReadinessSignal()
  readonly #logger: EngineLogger
  readonly #relay: RelaySettings
  readonly #onCommand: RedisCommandObserver | undefined
  readonly #isOverloaded: () => boolean
  readonly #commandTimeoutMs: number
  /** Pub/sub connection(s); the same object as `client` on a Cluster. */
  readonly #subscriber: RedisClient
  /** Cluster: channels use SSUBSCRIBE/SPUBLISH. */
  readonly #sharded: boolean
  readonly #liveNames = new Map<string, string>()
  #onMessage: ((message: ChannelMessage) => void) | undefined
  #onControl: ((message: string) => void) | undefined
  readonly #controlChannel: string
  #hasGetDel = true
  #closing = false
  #recheck: NodeJS.Timeout | undefined
  #reportedUnsupported = false

  constructor (options: RedisEngineOptions) {
    this.#prefix = options.keyPrefix
    this.#logger = options.logger
    this.#relay = options.relay
    this.#onCommand = options.onCommand
    this.#isOverloaded = options.isOverloaded ?? (() => false)
    this.#commandTimeoutMs = options.commandTimeoutMs
    const topology: RedisTopology = options.topology ?? { kind: 'standalone', url: options.url }
    this.topology = topology.kind
    const { client, subscriber, cluster } = createRedisConnections(topology, { commandTimeoutMs: options.commandTimeoutMs })
    this.client = client
    this.#subscriber = subscriber
    this.#sharded = cluster
    this.#controlChannel = `${options.keyPrefix}control`

    client.defineCommand('consumeTicketScript', { numberOfKeys: 1, lua: CONSUME_SCRIPT })
    client.defineCommand('publishToChannel', { numberOfKeys: 3, lua: PUBLISH_SCRIPT })
    client.defineCommand('readChannelHistory', { numberOfKeys: 2, lua: READ_HISTORY_SCRIPT })
    client.defineCommand('appendInboundMessage', { numberOfKeys: 2, lua: APPEND_INBOUND_SCRIPT })
    client.defineCommand('storeRevocationScript', { numberOfKeys: 1, lua: STORE_REVOCATION_SCRIPT })
    client.defineCommand('loadRevocationsScript', { numberOfKeys: 1, lua: LOAD_REVOCATIONS_SCRIPT })
    client.defineCommand('countHitScript', { numberOfKeys: 1, lua: COUNT_HIT_SCRIPT })

    subscriber.on('message', (name: string, payload: string) => { this.#onLive(name, payload) })
    subscriber.on('smessage', (name: string, payload: string) => { this.#onLive(name, payload) })
    subscriber.on('ready', () => {
      // Once subscribed, ioredis re-subscribes after every reconnect by itself.
      subscriber.subscribe(this.#controlChannel).catch(() => {})
      this.#onReady()
    })
    subscriber.on('close', () => { this.#onDown(subscriber === client ? 'close' : 'subscriber close') })
    subscriber.on('error', () => {})
    if (client !== subscriber) {
      client.on('ready', () => { this.#onReady() })
      client.on('close', () => { this.#onDown('close') })
    }
    client.on('end', () => { this.#onDown('end') })
    // Without a listener ioredis prints every failed reconnect. While ready, an error is
    // news; while not, it is a failed (re)connect attempt: why Redis cannot be reached,
    // logged at a bounded rate (the subscriber fails the same way, so only the client counts).
    const unreachable = new RedisUnreachableLog({ logger: this.#logger, topology, intervalMs: options.unreachableLogIntervalMs })
    this.#readiness.subscribe((ready) => { if (ready) unreachable.recovered() })
    client.on('error', (err: Error) => {
      if (this.#readiness.ready) this.#logger.error({ event: 'engine.redis.error', err: { message: err.message } }, 'redis error')
      else if (!this.#closing) unreachable.failed(err)
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
    await this.#command('set', async () => await this.client.set(this.#ticketKey(ticketHash), encodeTicketRecord(record), 'EX', storageTtlSeconds))
  }

  async consumeTicket (ticketHash: string): Promise<TicketRecord | null> {
    this.#assertReady()
    const key = this.#ticketKey(ticketHash)
    const value = this.#hasGetDel
      ? await this.#command('getdel', async () => await this.client.getdel(key))
      : await this.#command('script:consume-ticket', async () => await this.#commands.consumeTicketScript(key))
    return value === null ? null : decodeTicketRecord(value)
  }

  async publish (channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    this.#assertReady()
    const keys = this.#channelKeys(channel)
    const idempotent = options.idempotencyKey !== undefined
    const [offset, duplicate] = await this.#command('script:publish', async () => await this.#commands.publishToChannel(
      keys.meta, keys.stream, idempotent ? `${keys.idempotency}${options.idempotencyKey ?? ''}` : keys.meta,
      data, this.#relay.historySize, this.#relay.historyTtlSeconds, newEpoch(), keys.live,
      idempotent ? this.#relay.idempotencyTtlSeconds : 0, this.#sharded ? '1' : '0'
    ))
    const position = parseOffset(offset)
    if (position === null) throw new Error(`unexpected offset from Redis: ${offset}`)
    return { ...position, duplicate: duplicate === 1 }
  }

  async readHistory (channel: string, since?: { epoch: string, seq: number }): Promise<HistoryRead> {
    this.#assertReady()
    const keys = this.#channelKeys(channel)
    const [epoch, seq, recovered, entries] = await this.#command('script:read-history', async () => await this.#commands.readChannelHistory(
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
    const id = await this.#command('script:append-inbound', async () => await this.#commands.appendInboundMessage(
      stream, dedupe, this.#relay.idempotencyTtlSeconds, this.#relay.inboundMaxLength,
      'userId', message.userId, 'sessionId', message.sessionId, 'connectionId', message.connectionId, 'id', message.id, 'data', message.data
    ))
    return id !== null
  }

  async broadcastControl (message: string): Promise<void> {
    this.#assertReady()
    // Plain PUBLISH even on a Cluster: the cluster bus carries it to every node, so
    // every instance hears it wherever its subscriber connection is.
    await this.#command('publish', async () => await this.client.publish(this.#controlChannel, message))
  }

  onControl (listener: (message: string) => void): void {
    this.#onControl = listener
  }

  async storeRevocation (target: RevocationTarget, seconds: number): Promise<void> {
    this.#assertReady()
    await this.#command('script:store-revocation', async () => await this.#commands.storeRevocationScript(this.#revocationsKey, `${target.kind}:${target.id}`, seconds))
  }

  async loadRevocations (): Promise<StoredRevocation[]> {
    this.#assertReady()
    const flat = await this.#command('script:load-revocations', async () => await this.#commands.loadRevocationsScript(this.#revocationsKey))
    const active: StoredRevocation[] = []
    for (let index = 0; index + 1 < flat.length; index += 2) {
      const member = String(flat[index])
      const separator = member.indexOf(':')
      const kind = member.slice(0, separator)
      if (kind !== 'user' && kind !== 'session') continue
      active.push({ target: { kind, id: member.slice(separator + 1) }, remainingMs: Number(flat[index + 1]) })
    }
    return active
  }

  async countHit (key: string, windowMs: number): Promise<CounterHit> {
    this.#assertReady()
    // One key per counter: any Cluster slot will do.
    const [count, ttlMs] = await this.#command('script:count-hit', async () => await this.#commands.countHitScript(`${this.#prefix}ratelimit:${key}`, windowMs))
    return { count, ttlMs }
  }

  onChannelMessage (listener: (message: ChannelMessage) => void): void {
    this.#onMessage = listener
  }

  async listen (channel: string): Promise<void> {
    this.#assertReady()
    const live = this.#channelKeys(channel).live
    this.#liveNames.set(live, channel)
    if (this.#sharded) await this.#command('ssubscribe', async () => await this.#subscriber.ssubscribe(live))
    else await this.#command('subscribe', async () => await this.#subscriber.subscribe(live))
  }

  async unlisten (channel: string): Promise<void> {
    const live = this.#channelKeys(channel).live
    this.#liveNames.delete(live)
    // Not connected: ioredis forgets it and will not resubscribe it (and a message
    // that still arrives for it is dropped: it is no longer in #liveNames).
    const unsubscribe = this.#sharded
      ? this.#timed('sunsubscribe', async () => await this.#subscriber.sunsubscribe(live))
      : this.#timed('unsubscribe', async () => await this.#subscriber.unsubscribe(live))
    await unsubscribe.catch(() => {})
  }

  async close (): Promise<void> {
    this.#closing = true
    clearTimeout(this.#recheck)
    this.#readiness.set(false)
    for (const connection of new Set([this.client, this.#subscriber])) {
      try {
        await connection.quit()
      } catch {
        // Not connected: nothing to say goodbye to.
        connection.disconnect()
      }
      // QUIT leaves the Sentinel connector's failover detector connected to the
      // Sentinels; disconnect() is what releases it (a no-op otherwise).
      if (this.topology === 'sentinel') connection.disconnect()
    }
  }

  get #commands (): RelayCommands {
    return this.client as unknown as RelayCommands
  }

  /** One hash tag per channel: every key of a channel, and its shard channel, live in one Cluster slot. */
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

  /** One sorted set of every ban (docs/redis.md): loaded with one command, on one Cluster slot. */
  get #revocationsKey (): string {
    return `${this.#prefix}revocations`
  }

  #ticketKey (ticketHash: string): string {
    return `${this.#prefix}ticket:${ticketHash}`
  }

  #assertReady (): void {
    if (!this.#readiness.ready) throw new EngineUnavailableError('redis is not ready')
  }

  /** Runs one command and reports it to the observer; errors pass through unchanged. */
  async #timed<T> (name: string, run: () => Promise<T>): Promise<T> {
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
  async #command<T> (name: string, run: () => Promise<T>): Promise<T> {
    const started = performance.now()
    try {
      return await this.#timed(name, run)
    } catch (err) {
      const message = (err as Error).message
      if (message === COMMAND_TIMEOUT_MESSAGE && this.#stalledSince(started)) {
        throw new EngineOverloadedError('event loop stalled while waiting for Redis', { cause: err })
      }
      throw new EngineUnavailableError(message, { cause: err })
    }
  }

  #stalledSince (started: number): boolean {
    return performance.now() - started > this.#commandTimeoutMs * LATE_TIMEOUT_FACTOR || this.#isOverloaded()
  }

  #onReady (): void {
    if (this.#closing) return
    let major = 0
    this.#timed('info', async () => await this.client.info('server')).then((info) => {
      const version = /redis_version:(\d+)\.(\d+)/.exec(info)
      major = version === null ? 0 : Number(version[1])
      const minor = version === null ? 0 : Number(version[2])
      this.#hasGetDel = major > 6 || (major === 6 && minor >= 2)
    }, () => { this.#hasGetDel = false }).finally(() => {
      if (this.#closing || this.client.status !== 'ready' || this.#subscriber.status !== 'ready') return
      // A Cluster's channels need sharded pub/sub: below Redis 7 (or with the version
      // unknown) the engine stays not ready rather than lose messages, and checks again.
      if (this.#sharded && major < SHARDED_PUBSUB_MAJOR) {
        if (major > 0 && !this.#reportedUnsupported) {
          this.#reportedUnsupported = true
          this.#logger.error({ event: 'engine.redis.unsupported', major }, 'Redis Cluster below 7.0 has no sharded pub/sub; the gateway needs Redis 7 or later on a Cluster')
        }
        clearTimeout(this.#recheck)
        this.#recheck = setTimeout(() => { this.#onReady() }, RECHECK_MS * (major > 0 ? 10 : 1))
        this.#recheck.unref()
        return
      }
      if (!this.#readiness.ready) this.#logger.info({ event: 'engine.redis.ready', topology: this.topology, getdel: this.#hasGetDel }, 'redis ready')
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
