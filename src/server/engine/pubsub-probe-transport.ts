/**
 * Where the delivery probe (pubsub-probe.ts, SPEC §14) runs on each topology.
 * Standalone and Sentinel: one subscriber connection, one probe channel, PUBLISH.
 * Cluster: one sharded subscriber connection per master, so one probe channel per
 * master, named so that its hash slot is one that master owns, and SPUBLISH; plus the
 * one plain-SUBSCRIBE connection that carries the control channel, probed with PUBLISH. Probe
 * channels live under `<prefix>probe:` and never share a name with a client channel
 * (those are `<prefix>{ch:...}`).
 */
import { once } from 'node:events'
import { createRequire } from 'node:module'
import type { Cluster, Redis } from 'ioredis'
import type { RedisClient } from './redis-connection.js'
import type { PubsubProbeTransport } from './pubsub-probe.js'

// The slot function ioredis itself routes by (CommonJS without types), pinned to ioredis' exact version.
const calculateSlot = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number

/** How long a heal waits for ioredis to bring a replaced sharded subscriber back. */
const RESUBSCRIBE_WAIT_MS = 10_000

export interface ProbeTransportOptions {
  readonly client: RedisClient
  readonly subscriber: RedisClient
  readonly cluster: boolean
  /** `<prefix>probe:<instance>`: this instance's probe channels start with it. */
  readonly channelBase: string
  /** The control channel: on a Cluster it shares the plain-SUBSCRIBE connection with one probe channel. */
  readonly controlChannel: string
  /** Every channel of the healed connection is subscribed again: re-sync them all from history. */
  readonly onResubscribed: () => void
}

export function probeTransport (options: ProbeTransportOptions): PubsubProbeTransport {
  return options.cluster ? new ClusterProbeTransport(options) : new SingleProbeTransport(options)
}

/** Standalone and Sentinel: the one subscriber connection carries every channel. */
class SingleProbeTransport implements PubsubProbeTransport {
  readonly #options: ProbeTransportOptions
  readonly #channels: readonly string[]

  constructor (options: ProbeTransportOptions) {
    this.#options = options
    this.#channels = [options.channelBase]
  }

  shards (): readonly string[] {
    return this.#channels
  }

  async subscribe (channel: string): Promise<void> {
    await this.#options.subscriber.subscribe(channel)
  }

  async publish (channel: string, payload: string): Promise<void> {
    await this.#options.client.publish(channel, payload)
  }

  async heal (): Promise<void> {
    // A reconnect: ioredis subscribes every channel again, readiness goes down and
    // back up once the control channel is confirmed (redis-readiness.ts), and the
    // relay re-reads every active channel from history as after any reconnect.
    this.#options.subscriber.disconnect(true)
  }
}

/** The parts of ioredis' Cluster (5.x, `shardedSubscribers: true`) a heal needs; not in its public types. */
interface ShardedSubscriberGroup {
  getResponsibleSubscriber (slot: number): { getInstance (): Redis | null } | undefined
}
interface ClusterInternals {
  readonly shardedSubscribers?: ShardedSubscriberGroup
  /** The plain-SUBSCRIBE connection (the control channel). */
  readonly subscriber?: { getInstance (): Redis | null }
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Cluster: one sharded subscriber per master; a deaf one is replaced, the others are left alone. */
class ClusterProbeTransport implements PubsubProbeTransport {
  readonly #options: ProbeTransportOptions
  readonly #cluster: Cluster
  /** Master node key → its probe channel. */
  readonly #byMaster = new Map<string, string>()
  /** Probed with PUBLISH on the connection that carries the control channel. */
  readonly #controlProbe: string

  constructor (options: ProbeTransportOptions) {
    this.#options = options
    this.#cluster = options.client as Cluster
    this.#controlProbe = `${options.channelBase}:control`
  }

  shards (): readonly string[] {
    const slots = this.#cluster.slots
    const masters = new Map<string, Set<number>>()
    slots.forEach((nodes, slot) => {
      const master = nodes[0]
      if (master === undefined) return
      let owned = masters.get(master)
      if (owned === undefined) masters.set(master, owned = new Set())
      owned.add(slot)
    })
    for (const master of [...this.#byMaster.keys()]) if (!masters.has(master)) this.#byMaster.delete(master)
    for (const [master, owned] of masters) {
      const known = this.#byMaster.get(master)
      if (known === undefined || !owned.has(calculateSlot(known))) this.#byMaster.set(master, this.#channelIn(owned))
    }
    return [...this.#byMaster.values(), this.#controlProbe]
  }

  async subscribe (channel: string): Promise<void> {
    if (channel === this.#controlProbe) await this.#cluster.subscribe(channel)
    else await this.#cluster.ssubscribe(channel)
  }

  async publish (channel: string, payload: string): Promise<void> {
    if (channel === this.#controlProbe) await this.#cluster.publish(channel, payload)
    else await this.#cluster.spublish(channel, payload)
  }

  async heal (channel: string): Promise<void> {
    if (channel === this.#controlProbe) {
      await this.#healControl()
      return
    }
    const group = (this.#cluster as unknown as ClusterInternals).shardedSubscribers
    const slot = calculateSlot(channel)
    const deaf = group?.getResponsibleSubscriber(slot)?.getInstance()
    if (group === undefined || deaf === null || deaf === undefined) throw new Error('no sharded subscriber for the probe channel')
    // Its end makes ioredis refresh the slot map and replace the subscriber: a new
    // connection to the same master that SSUBSCRIBEs every channel of its slots again.
    const ready = once(this.#cluster, 'subscribersReady', { signal: AbortSignal.timeout(RESUBSCRIBE_WAIT_MS) })
    deaf.disconnect()
    await ready
    const replacement = group.getResponsibleSubscriber(slot)?.getInstance()
    if (replacement === null || replacement === undefined) throw new Error('the sharded subscriber was not replaced')
    // The SSUBSCRIBEs went out just before on this connection: once a PING behind
    // them answers, every channel of the shard is live again and history can be read.
    await replacement.ping()
    this.#options.onResubscribed()
  }

  /**
   * The plain-SUBSCRIBE connection: its end makes ioredis pick a node and subscribe the
   * same channels there. Control and probe channel are subscribed again explicitly, and
   * the answer, behind the resubscription on the new connection, says both are live.
   * (Control messages missed meanwhile have no history; bans are reloaded on the re-sync.)
   */
  async #healControl (): Promise<void> {
    const holder = (this.#cluster as unknown as ClusterInternals).subscriber
    const deaf = holder?.getInstance()
    if (holder === undefined || deaf === null || deaf === undefined) throw new Error('no subscriber for the control channel')
    deaf.disconnect()
    for (let waited = 0; holder.getInstance() === deaf || holder.getInstance() === null; waited += 20) {
      if (waited > RESUBSCRIBE_WAIT_MS) throw new Error('the control subscriber was not replaced')
      await sleep(20)
    }
    await this.#cluster.subscribe(this.#options.controlChannel, this.#controlProbe)
    this.#options.onResubscribed()
  }

  /** A probe channel whose slot is one of `owned`: the instance's base with a small counter as hash tag. */
  #channelIn (owned: ReadonlySet<number>): string {
    for (let index = 0; ; index += 1) {
      const channel = `${this.#options.channelBase}:{${this.#options.channelBase}:${index}}`
      if (owned.has(calculateSlot(channel))) return channel
    }
  }
}
