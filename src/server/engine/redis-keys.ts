/** The keys of one channel; all share the hash tag `{ch:<channel>}`. */
export interface ChannelKeys {
  /** Hash {epoch, seq}. */
  readonly meta: string
  /** Stream of retained messages. */
  readonly stream: string
  /** Prefix of the publish idempotency keys. */
  readonly idempotency: string
  /** The pub/sub (or shard) channel of live messages (join/leave frames too, prefixed `!`). */
  readonly live: string
}

/** A presence channel's keys (SPEC §11), in the channel's hash slot (docs/redis.md "Presence"). */
export interface PresenceKeys {
  /** Zset `<connectionId>:<userId>` → expiry (ms, Redis clock). */
  readonly entries: string
  /** Hash userId → connections present. */
  readonly counts: string
  /** Hash userId → the JWT's `info` (JSON). */
  readonly info: string
  /** Zset userId → when its leave is due (its last connection left). */
  readonly leaving: string
  readonly live: string
}

/**
 * Where everything lives in Redis (docs/redis.md), in one place so the layout can be
 * read at a glance. Every script and multi-key command touches one hash slot, so
 * the same layout runs on a Cluster.
 */
export class RedisKeys {
  readonly #prefix: string
  /** Control messages reach every instance (plain PUBLISH, even on a Cluster). */
  readonly control: string
  /** One sorted set of every ban: loaded with one command, on one Cluster slot. */
  readonly revocations: string
  /** The upstream `send` stream backends consume. */
  readonly inbound: string
  /** The lifecycle events stream backends consume (SPEC §12): one key, any Cluster slot. */
  readonly events: string

  constructor (prefix: string) {
    this.#prefix = prefix
    this.control = `${prefix}control`
    this.revocations = `${prefix}revocations`
    this.inbound = `${prefix}inbound`
    this.events = `${prefix}events`
  }

  /**
   * The delivery probe's channels of one instance (SPEC §14): `<prefix>probe:<instance>`,
   * never a client channel's name (those carry `{ch:`). Nothing is stored under it.
   */
  probe (instance: string): string {
    return `${this.#prefix}probe:${instance}`
  }

  /** One hash tag per channel: every key of a channel, and its shard channel, live in one Cluster slot. */
  channel (channel: string): ChannelKeys {
    const base = `${this.#prefix}{ch:${channel}}`
    return { meta: `${base}:meta`, stream: `${base}:history`, idempotency: `${base}:idem:`, live: `${base}:live` }
  }

  presence (channel: string): PresenceKeys {
    const base = `${this.#prefix}{ch:${channel}}`
    return { entries: `${base}:presence`, counts: `${base}:presence:counts`, info: `${base}:presence:info`, leaving: `${base}:presence:leaving`, live: `${base}:live` }
  }

  /** Presence channels → when one may next need a sweep (one key, any slot; read by every instance's sweeper). */
  get presenceDue (): string {
    return `${this.#prefix}presence:due`
  }

  /** Instances → heartbeat expiry (ms, Redis clock); a lapsed one crashed (SPEC §12 crash disconnects). One key, any slot. */
  get instances (): string {
    return `${this.#prefix}instances`
  }

  /** Hash connectionId → JSON {userId, sessionId} of the connections one instance holds, in the instance's own slot. */
  instanceConnections (instanceId: string): string {
    return `${this.#prefix}instance:{${instanceId}}:conns`
  }

  /** A user's registry of open connections (SPEC §11): a zset of expiries and a hash of details, one slot. */
  user (userId: string): { readonly connections: string, readonly details: string } {
    const base = `${this.#prefix}user:{${userId}}`
    return { connections: `${base}:conns`, details: `${base}:details` }
  }

  ticket (ticketHash: string): string {
    return `${this.#prefix}ticket:${ticketHash}`
  }

  /** The inbound stream's own name as hash tag: the dedupe key shares its Cluster slot. */
  inboundDedupe (sessionId: string, id: string): string {
    return `${this.#prefix}{${this.inbound}}:seen:${sessionId}:${id}`
  }

  /** One key per counter: any Cluster slot will do. */
  counter (key: string): string {
    return `${this.#prefix}ratelimit:${key}`
  }
}
