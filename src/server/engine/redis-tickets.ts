/**
 * Tickets and the counters that limit them on Redis (SPEC §3, §4): a ticket is one
 * key written with its TTL and consumed with GETDEL (a script on servers older than
 * 6.2); issuing one counts its user's hit in the same script where both keys share a
 * node, so a ticket costs one round trip.
 */
import { decodeTicketRecord, encodeTicketRecord, type CounterHit, type TicketRecord } from './engine.js'
import type { RedisClient } from './redis-connection.js'
import type { RedisCommandRunner } from './redis-command-runner.js'
import type { RedisKeys } from './redis-keys.js'
import type { RedisScripts } from './redis-scripts.js'

export interface RedisTicketsOptions {
  readonly client: RedisClient
  readonly keys: RedisKeys
  readonly scripts: RedisScripts
  readonly runner: RedisCommandRunner
  /** Cluster: the ticket and its counter live on different slots. */
  readonly sharded: boolean
  /** Known once the server's version is read (redis-readiness.ts). */
  readonly hasGetDel: () => boolean
  readonly assertReady: () => void
}

export class RedisTickets {
  readonly #options: RedisTicketsOptions

  constructor (options: RedisTicketsOptions) {
    this.#options = options
  }

  async store (ticketHash: string, record: TicketRecord, storageTtlSeconds: number): Promise<void> {
    const { client, keys, runner, assertReady } = this.#options
    assertReady()
    await runner.run('set', async () => await client.set(keys.ticket(ticketHash), encodeTicketRecord(record), 'EX', storageTtlSeconds))
  }

  async storeCounted (ticketHash: string, record: TicketRecord, storageTtlSeconds: number, counterKey: string, windowMs: number): Promise<CounterHit> {
    const { keys, scripts, runner, sharded, assertReady } = this.#options
    if (sharded) {
      const [, hit] = await Promise.all([this.store(ticketHash, record, storageTtlSeconds), this.countHit(counterKey, windowMs)])
      return hit
    }
    assertReady()
    const [count, ttlMs] = await runner.run('script:store-ticket-counted', async () =>
      await scripts.storeTicketCounted(keys.ticket(ticketHash), keys.counter(counterKey), encodeTicketRecord(record), storageTtlSeconds, windowMs))
    return { count, ttlMs }
  }

  async consume (ticketHash: string): Promise<TicketRecord | null> {
    const { client, keys, scripts, runner, hasGetDel, assertReady } = this.#options
    assertReady()
    const key = keys.ticket(ticketHash)
    const value = hasGetDel()
      ? await runner.run('getdel', async () => await client.getdel(key))
      : await runner.run('script:consume-ticket', async () => await scripts.consumeTicket(key))
    return value === null ? null : decodeTicketRecord(value)
  }

  async countHit (key: string, windowMs: number): Promise<CounterHit> {
    const { keys, scripts, runner, assertReady } = this.#options
    assertReady()
    const [count, ttlMs] = await runner.run('script:count-hit', async () => await scripts.countHit(keys.counter(key), windowMs))
    return { count, ttlMs }
  }
}
