import { randomBytes } from 'node:crypto'
import {
  DEFAULT_EVENTS_MAX_LENGTH,
  EngineUnavailableError,
  type ChannelMessage,
  type CounterHit,
  type Engine,
  type EngineCheck,
  type EngineLogger,
  type EventFields,
  type HistoryPage,
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
import { RedisCommandRunner, type RedisCommandObserver } from './redis-command-runner.js'
import { createRedisConnections, type RedisClient } from './redis-connection.js'
import { RedisKeys } from './redis-keys.js'
import { eventFieldsOf, liveMessage, revocationsOf, storedMessage } from './redis-messages.js'
import { PROBE_DEFAULTS, PubsubProbe, type PubsubProbeObserver } from './pubsub-probe.js'
import { probeTransport } from './pubsub-probe-transport.js'
import { RedisPresence } from './redis-presence.js'
import { RedisReadiness } from './redis-readiness.js'
import { RedisScripts } from './redis-scripts.js'
import { RedisTickets } from './redis-tickets.js'
import type { RedisTopology } from './redis-topology.js'

const newEpoch = (): string => randomBytes(6).toString('base64url')

interface RedisEngineSettings {
  readonly keyPrefix: string
  /** Upper bound on any one command, so a stalled Redis becomes a 503, not a hang. */
  readonly commandTimeoutMs: number
  readonly logger: EngineLogger
  readonly relay: RelaySettings
  /** Called after every command completes (metrics); never throws into the engine. */
  readonly onCommand?: RedisCommandObserver
  /** True while this process is overloaded: a command timeout then is overload, not Redis down. */
  readonly isOverloaded?: () => boolean
  /** Bound on repeated `engine.redis.unreachable` lines while Redis cannot be reached (default 30 s). */
  readonly unreachableLogIntervalMs?: number
  /** The delivery probe (SPEC §14; PUBSUB_PROBE_INTERVAL_MS, PUBSUB_PROBE_TIMEOUT_MS; default 5000, 2000). */
  readonly pubsubProbe?: { readonly intervalMs: number, readonly timeoutMs: number, readonly observer?: PubsubProbeObserver | undefined }
}

/** Where Redis is: a standalone URL (shorthand), or any topology (docs/redis.md). */
export type RedisEngineOptions = RedisEngineSettings & (
  | { readonly url: string, readonly topology?: undefined }
  | { readonly topology: RedisTopology, readonly url?: undefined })

/**
 * The Redis engine (ioredis), on a standalone server, behind Sentinel, or on a
 * Cluster (redis-connection.ts builds the clients). The clients fail fast rather
 * than wait (redis/ioredis#285): no offline queue, no per-command retries, a
 * command timeout. They keep reconnecting forever in the background and readiness
 * follows the connection both ways (redis-readiness.ts), so the gateway boots and
 * serves (503s) while Redis is down and recovers without a restart, Sentinel
 * failovers included (SPEC §3 /readyz).
 *
 * Every key of a channel carries one hash tag (redis-keys.ts), and every script and
 * multi-key command touches one hash slot, so the same code runs on a Cluster.
 * There, channel fan-out uses sharded pub/sub; the control channel stays on
 * PUBLISH because every instance must hear it.
 */
export class RedisEngine implements Engine {
  readonly kind = 'redis' as const
  readonly topology: RedisTopology['kind']
  readonly #client: RedisClient
  /** Pub/sub connection(s); the same object as `#client` on a Cluster. */
  readonly #subscriber: RedisClient
  /** Cluster: channels use SSUBSCRIBE/SPUBLISH. */
  readonly #sharded: boolean
  readonly #keys: RedisKeys
  readonly #scripts: RedisScripts
  readonly #runner: RedisCommandRunner
  readonly #readiness: RedisReadiness
  readonly #tickets: RedisTickets
  readonly #relay: RelaySettings
  readonly #liveNames = new Map<string, string>()
  /** SPEC §14: finds a subscriber that is connected but deaf, and re-establishes it. */
  readonly #probe: PubsubProbe
  /** Every probe channel of this instance starts with it. */
  readonly #probeBase: string
  /** Presence and the per-user registry (SPEC §11). */
  readonly presence: RedisPresence
  #onMessage: ((message: ChannelMessage) => void) | undefined
  #onControl: ((message: string) => void) | undefined

  constructor (options: RedisEngineOptions) {
    this.#relay = options.relay
    this.#keys = new RedisKeys(options.keyPrefix)
    const topology: RedisTopology = options.topology ?? { kind: 'standalone', url: options.url }
    this.topology = topology.kind
    const { client, subscriber, cluster } = createRedisConnections(topology, { commandTimeoutMs: options.commandTimeoutMs })
    this.#client = client
    this.#subscriber = subscriber
    this.#sharded = cluster
    this.#scripts = new RedisScripts(client)
    this.#runner = new RedisCommandRunner({
      commandTimeoutMs: options.commandTimeoutMs,
      ...(options.onCommand === undefined ? {} : { onCommand: options.onCommand }),
      ...(options.isOverloaded === undefined ? {} : { isOverloaded: options.isOverloaded })
    })
    this.presence = new RedisPresence({ client, keys: this.#keys, runner: this.#runner, sharded: cluster, assertReady: () => { this.#assertReady() } })
    subscriber.on('message', (name: string, payload: string) => { this.#onLive(name, payload) })
    subscriber.on('smessage', (name: string, payload: string) => { this.#onLive(name, payload) })
    this.#readiness = new RedisReadiness({
      client,
      subscriber,
      sharded: cluster,
      topology,
      logger: options.logger,
      runner: this.#runner,
      controlChannel: this.#keys.control,
      ...(options.unreachableLogIntervalMs === undefined ? {} : { unreachableLogIntervalMs: options.unreachableLogIntervalMs })
    })
    this.#tickets = new RedisTickets({
      client, keys: this.#keys, scripts: this.#scripts, runner: this.#runner, sharded: cluster, hasGetDel: () => this.#readiness.hasGetDel, assertReady: () => { this.#assertReady() }
    })
    this.#probeBase = this.#keys.probe(newEpoch())
    const transport = probeTransport({ client, subscriber, cluster, channelBase: this.#probeBase, controlChannel: this.#keys.control, onResubscribed: () => { this.#readiness.resubscribed() } })
    this.#probe = new PubsubProbe({ ...PROBE_DEFAULTS, ...options.pubsubProbe, logger: options.logger, isConnected: () => this.#readiness.ready, transport })
    this.#probe.start()
  }

  isReady (): boolean {
    return this.#readiness.ready
  }

  onReadyChange (listener: (ready: boolean) => void): () => void {
    return this.#readiness.subscribe(listener)
  }

  checks (): readonly EngineCheck[] {
    return [this.#readiness.check(), this.#probe.check()]
  }

  async storeTicket (ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void> {
    await this.#tickets.store(ticketHash, record, storageTtlSeconds)
  }

  async storeTicketCounted (ticketHash: string, record: TicketRecord, storageTtlSeconds: number, counterKey: string, windowMs: number): Promise<CounterHit> {
    return await this.#tickets.storeCounted(ticketHash, record, storageTtlSeconds, counterKey, windowMs)
  }

  async consumeTicket (ticketHash: string): Promise<TicketRecord | null> {
    return await this.#tickets.consume(ticketHash)
  }

  async publish (channel: string, data: string, options: PublishOptions = {}): Promise<PublishResult> {
    this.#assertReady()
    const [offset, duplicate] = await this.#runner.run('script:publish', async () => await this.#scripts.publish(this.#keys.channel(channel), {
      data,
      ...(options.idempotencyKey === undefined ? {} : { idempotencyKey: options.idempotencyKey }),
      ...(options.from === undefined ? {} : { from: options.from }),
      historySize: this.#relay.historySize,
      historyTtlSeconds: this.#relay.historyTtlSeconds,
      newEpoch: newEpoch(),
      idempotencyTtlSeconds: this.#relay.idempotencyTtlSeconds,
      sharded: this.#sharded
    }))
    const position = parseOffset(offset)
    if (position === null) throw new Error(`unexpected offset from Redis: ${offset}`)
    return { ...position, duplicate: duplicate === 1 }
  }

  async readHistory (channel: string, since?: { epoch: string, seq: number }): Promise<HistoryRead> {
    this.#assertReady()
    const [epoch, seq, recovered, entries] = await this.#runner.run('script:read-history', async () =>
      await this.#scripts.readHistory(this.#keys.channel(channel), newEpoch(), this.#relay.historyTtlSeconds, since))
    return {
      epoch,
      seq: Number(seq),
      recovered: recovered === 1,
      messages: entries.map(([id, fields]) => storedMessage(channel, epoch, Number.parseInt(id, 10), fields))
    }
  }

  async appendInbound (message: InboundMessage): Promise<boolean> {
    this.#assertReady()
    const id = await this.#runner.run('script:append-inbound', async () => await this.#scripts.appendInbound(
      this.#keys.inbound, this.#keys.inboundDedupe(message.sessionId, message.id),
      this.#relay.idempotencyTtlSeconds, this.#relay.inboundMaxLength, message))
    return id !== null
  }

  async broadcastControl (message: string): Promise<void> {
    this.#assertReady()
    // Plain PUBLISH even on a Cluster: the cluster bus carries it to every node, so
    // every instance hears it wherever its subscriber connection is.
    await this.#runner.run('publish', async () => await this.#client.publish(this.#keys.control, message))
  }

  onControl (listener: (message: string) => void): void {
    this.#onControl = listener
  }

  async storeRevocation (target: RevocationTarget, seconds: number): Promise<void> {
    this.#assertReady()
    await this.#runner.run('script:store-revocation', async () => await this.#scripts.storeRevocation(this.#keys.revocations, `${target.kind}:${target.id}`, seconds))
  }

  async loadRevocations (): Promise<StoredRevocation[]> {
    this.#assertReady()
    const flat = await this.#runner.run('script:load-revocations', async () => await this.#scripts.loadRevocations(this.#keys.revocations))
    return revocationsOf(flat)
  }

  async countHit (key: string, windowMs: number): Promise<CounterHit> {
    return await this.#tickets.countHit(key, windowMs)
  }

  onChannelMessage (listener: (message: ChannelMessage) => void): void {
    this.#onMessage = listener
  }

  async listen (channel: string): Promise<void> {
    this.#assertReady()
    const live = this.#keys.channel(channel).live
    this.#liveNames.set(live, channel)
    if (this.#sharded) await this.#runner.run('ssubscribe', async () => await this.#subscriber.ssubscribe(live))
    else await this.#runner.run('subscribe', async () => await this.#subscriber.subscribe(live))
  }

  async unlisten (channel: string): Promise<void> {
    const live = this.#keys.channel(channel).live
    this.#liveNames.delete(live)
    // Not connected: ioredis forgets it and will not resubscribe it (and a message
    // that still arrives for it is dropped: it is no longer in #liveNames).
    const unsubscribe = this.#sharded
      ? this.#runner.timed('sunsubscribe', async () => await this.#subscriber.sunsubscribe(live))
      : this.#runner.timed('unsubscribe', async () => await this.#subscriber.unsubscribe(live))
    await unsubscribe.catch(() => {})
  }

  async close (): Promise<void> {
    this.#probe.close()
    this.#readiness.close()
    for (const connection of new Set([this.#client, this.#subscriber])) {
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

  async readHistoryPage (channel: string, page: HistoryPage): Promise<HistoryRead> {
    this.#assertReady()
    const [epoch, seq, recovered, entries] = await this.#runner.run('script:read-history', async () =>
      await this.#scripts.readHistoryPage(this.#keys.channel(channel), newEpoch(), this.#relay.historyTtlSeconds, page))
    return {
      epoch,
      seq: Number(seq),
      recovered: recovered === 1,
      messages: entries.map(([id, fields]) => storedMessage(channel, epoch, Number.parseInt(id, 10), fields))
    }
  }

  async appendEvent (fields: EventFields): Promise<void> {
    this.#assertReady()
    const cap = this.#relay.eventsMaxLength ?? DEFAULT_EVENTS_MAX_LENGTH
    // One command on one key: no script needed. MAXLEN ~ trims whole stream nodes, cheaply.
    await this.#runner.run('xadd', async () => await this.#client.xadd(this.#keys.events, 'MAXLEN', '~', cap, '*', ...Object.entries(fields).flat()))
  }

  async readEvents (count: number): Promise<EventFields[]> {
    this.#assertReady()
    const entries = await this.#runner.run('xrevrange', async () => await this.#client.xrevrange(this.#keys.events, '+', '-', 'COUNT', count))
    return entries.reverse().map(([, flat]) => eventFieldsOf(flat))
  }

  #onLive (name: string, payload: string): void {
    if (name === this.#keys.control) {
      this.#onControl?.(payload)
      return
    }
    if (name.startsWith(this.#probeBase) && this.#probe.received(name, payload)) return
    const channel = this.#liveNames.get(name)
    if (channel !== undefined && this.presence.handleLive(channel, payload)) return
    const message = channel === undefined ? null : liveMessage(channel, payload)
    if (message !== null) this.#onMessage?.(message)
  }

  #assertReady (): void {
    if (!this.#readiness.ready) throw new EngineUnavailableError('redis is not ready')
  }
}
