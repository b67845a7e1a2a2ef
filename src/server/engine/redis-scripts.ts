/**
 * The engine's Lua scripts (lua/*.lua), loaded once and called through typed
 * methods. ioredis' defineCommand sends EVALSHA and falls back to EVAL on NOSCRIPT,
 * on a Cluster too; the commands it adds are declared on ioredis' own
 * RedisCommander interface (the augmentation ioredis documents for TypeScript), so
 * they are typed without a cast.
 */
import { readFileSync } from 'node:fs'
import type { ClientContext, Result } from 'ioredis'
import type { RedisClient } from './redis-connection.js'
import type { ChannelKeys } from './redis-keys.js'

type StreamEntry = [id: string, fields: string[]]

declare module 'ioredis' {
  interface RedisCommander<Context extends ClientContext = { type: 'default' }> {
    publishToChannel (meta: string, stream: string, idempotency: string, data: string, historySize: number,
      ttlSeconds: number, epoch: string, live: string, idempotencyTtlSeconds: number, sharded: '0' | '1', from: string): Result<[string, number], Context>
    readChannelHistory (meta: string, stream: string, epoch: string, ttlSeconds: number, sinceEpoch: string,
      sinceSeq: number): Result<[string, number, number, StreamEntry[]], Context>
    appendInboundMessage (stream: string, dedupe: string, ttlSeconds: number, maxLength: number, ...fields: string[]): Result<string | null, Context>
    consumeTicketScript (key: string): Result<string | null, Context>
    storeRevocationScript (set: string, member: string, seconds: number): Result<number, Context>
    loadRevocationsScript (set: string): Result<Array<string | number>, Context>
    countHitScript (counter: string, windowMs: number): Result<[number, number], Context>
    storeTicketCountedScript (ticket: string, counter: string, record: string, storageTtlSeconds: number, windowMs: number): Result<[number, number], Context>
    readChannelHistoryPage (meta: string, stream: string, epoch: string, ttlSeconds: number, sinceEpoch: string,
      sinceSeq: number, limit: number, latest: '0' | '1'): Result<[string, number, number, StreamEntry[]], Context>
  }
}

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8')
const PUBLISH_SCRIPT = lua('publish')
const READ_HISTORY_SCRIPT = lua('read-history')
const APPEND_INBOUND_SCRIPT = lua('append-inbound')
const STORE_REVOCATION_SCRIPT = lua('store-revocation')
const LOAD_REVOCATIONS_SCRIPT = lua('load-revocations')
const COUNT_HIT_SCRIPT = lua('count-hit')
const STORE_TICKET_COUNTED_SCRIPT = lua('store-ticket-counted')

/** GETDEL arrived in Redis 6.2; older servers get the same atomicity from a script. */
const CONSUME_SCRIPT = "local v = redis.call('GET', KEYS[1]); if v then redis.call('DEL', KEYS[1]) end; return v"

export interface PublishArguments {
  readonly data: string
  /** The idempotency key to check, or none (the script then ignores its third key). */
  readonly idempotencyKey?: string
  readonly historySize: number
  readonly historyTtlSeconds: number
  /** Used only when the channel has no epoch yet. */
  readonly newEpoch: string
  readonly idempotencyTtlSeconds: number
  /** Cluster: publish with SPUBLISH. */
  readonly sharded: boolean
  /** The publishing user of a client publish (SPEC §9); none for backends. */
  readonly from?: string
}

export interface InboundFields {
  readonly userId: string
  readonly sessionId: string
  readonly connectionId: string
  readonly id: string
  readonly data: string
}

/** The scripts of one client; each method is one script call (one round trip, one hash slot). */
export class RedisScripts {
  readonly #client: RedisClient

  constructor (client: RedisClient) {
    this.#client = client
    client.defineCommand('consumeTicketScript', { numberOfKeys: 1, lua: CONSUME_SCRIPT })
    client.defineCommand('publishToChannel', { numberOfKeys: 3, lua: PUBLISH_SCRIPT })
    client.defineCommand('readChannelHistory', { numberOfKeys: 2, lua: READ_HISTORY_SCRIPT })
    client.defineCommand('appendInboundMessage', { numberOfKeys: 2, lua: APPEND_INBOUND_SCRIPT })
    client.defineCommand('storeRevocationScript', { numberOfKeys: 1, lua: STORE_REVOCATION_SCRIPT })
    client.defineCommand('loadRevocationsScript', { numberOfKeys: 1, lua: LOAD_REVOCATIONS_SCRIPT })
    client.defineCommand('countHitScript', { numberOfKeys: 1, lua: COUNT_HIT_SCRIPT })
    client.defineCommand('storeTicketCountedScript', { numberOfKeys: 2, lua: STORE_TICKET_COUNTED_SCRIPT })
    // The same script as readChannelHistory, with its optional limit arguments (GET /v1/history).
    client.defineCommand('readChannelHistoryPage', { numberOfKeys: 2, lua: READ_HISTORY_SCRIPT })
  }

  /** Offset text and 1 when the idempotency key had been seen (nothing published). */
  async publish (keys: ChannelKeys, message: PublishArguments): Promise<[offset: string, duplicate: number]> {
    const idempotent = message.idempotencyKey !== undefined
    return await this.#client.publishToChannel(
      keys.meta, keys.stream, idempotent ? `${keys.idempotency}${message.idempotencyKey ?? ''}` : keys.meta,
      message.data, message.historySize, message.historyTtlSeconds, message.newEpoch, keys.live,
      idempotent ? message.idempotencyTtlSeconds : 0, message.sharded ? '1' : '0',
      message.from === undefined ? '' : JSON.stringify(message.from))
  }

  /** Epoch, last seq, 1 when `since` was recovered, and the entries after it. */
  async readHistory (keys: ChannelKeys, newEpoch: string, ttlSeconds: number, since?: { epoch: string, seq: number }): Promise<[string, number, number, StreamEntry[]]> {
    return await this.#client.readChannelHistory(keys.meta, keys.stream, newEpoch, ttlSeconds, since?.epoch ?? '', since?.seq ?? 0)
  }

  /** The new entry's id, or null for a duplicate. */
  async appendInbound (stream: string, dedupe: string, ttlSeconds: number, maxLength: number, message: InboundFields): Promise<string | null> {
    return await this.#client.appendInboundMessage(stream, dedupe, ttlSeconds, maxLength,
      'userId', message.userId, 'sessionId', message.sessionId, 'connectionId', message.connectionId, 'id', message.id, 'data', message.data)
  }

  async consumeTicket (key: string): Promise<string | null> {
    return await this.#client.consumeTicketScript(key)
  }

  async storeRevocation (set: string, member: string, seconds: number): Promise<number> {
    return await this.#client.storeRevocationScript(set, member, seconds)
  }

  /** A flat list: member, milliseconds left, member, ... */
  async loadRevocations (set: string): Promise<Array<string | number>> {
    return await this.#client.loadRevocationsScript(set)
  }

  /** Hits in the window, this one included, and milliseconds left in it. */
  async countHit (counter: string, windowMs: number): Promise<[number, number]> {
    return await this.#client.countHitScript(counter, windowMs)
  }

  /** A ticket stored (SET EX) and one hit counted, one script: both keys on one node (not a Cluster). */
  async storeTicketCounted (ticket: string, counter: string, record: string, storageTtlSeconds: number, windowMs: number): Promise<[number, number]> {
    return await this.#client.storeTicketCountedScript(ticket, counter, record, storageTtlSeconds, windowMs)
  }

  /** As readHistory, at most `limit` messages; without `since`, the latest `limit` (SPEC §10). */
  async readHistoryPage (keys: ChannelKeys, newEpoch: string, ttlSeconds: number, page: { since?: { epoch: string, seq: number } | undefined, limit: number }): Promise<[string, number, number, StreamEntry[]]> {
    const { since, limit } = page
    return await this.#client.readChannelHistoryPage(keys.meta, keys.stream, newEpoch, ttlSeconds, since?.epoch ?? '', since?.seq ?? 0, limit, since === undefined ? '1' : '0')
  }
}
