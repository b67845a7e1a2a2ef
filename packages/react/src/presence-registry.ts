import type { GatewayClientError, PresenceChange, PresenceInfo, RealtimeClient } from '@realtime-gateway/client'
import type { ChannelRegistry } from './channel-registry.js'
import { ChannelWatchers } from './channel-watchers.js'

/**
 * A channel's presence as `usePresence` sees it. `idle`: nothing asked (also every
 * render on the server); `loading`: waiting for the subscription and the first
 * answer; `ready`: the last answer with every join/leave since applied (kept while a
 * refetch is in flight); `failed`: the subscription or the query was refused.
 */
export type PresenceState =
  | { readonly status: 'idle' }
  | { readonly status: 'loading' }
  | { readonly status: 'ready', readonly presence: PresenceInfo }
  | { readonly status: 'failed', readonly error: GatewayClientError }

export const PRESENCE_IDLE: PresenceState = Object.freeze({ status: 'idle' })
const LOADING: PresenceState = Object.freeze({ status: 'loading' })

type Change = readonly ['join' | 'leave', PresenceChange]

/**
 * `presence` after one join or leave (SPEC §11: one join per user's first connection,
 * one leave after its last). A join of a listed user only updates its `info`;
 * `connections` of other tabs are as of the last answer, refetched after a reconnect.
 */
export function applyPresenceChange (presence: PresenceInfo, [kind, change]: Change): PresenceInfo {
  const listed = presence.users.find((user) => user.userId === change.userId)
  if (kind === 'join') {
    if (listed !== undefined) {
      if (change.info === undefined) return presence
      return { ...presence, users: presence.users.map((user) => user === listed ? { ...user, info: change.info } : user) }
    }
    const user = change.info === undefined ? { userId: change.userId, connections: 1 } : { userId: change.userId, connections: 1, info: change.info }
    return { ...presence, users: [...presence.users, user], totalUsers: presence.totalUsers + 1, totalConnections: presence.totalConnections + 1 }
  }
  if (listed === undefined) {
    // Beyond the 1000 listed (truncated), the user was counted; otherwise it was never here.
    return presence.truncated ? { ...presence, totalUsers: Math.max(0, presence.totalUsers - 1) } : presence
  }
  return {
    ...presence,
    users: presence.users.filter((user) => user !== listed),
    totalUsers: Math.max(0, presence.totalUsers - 1),
    totalConnections: Math.max(0, presence.totalConnections - listed.connections)
  }
}

interface Entry {
  watchers: number
  state: PresenceState
  /** Joins and leaves seen while a query is in flight, applied to its answer (which may predate them). */
  buffered: Change[] | undefined
  /** Which query is the latest: an older answer is dropped. */
  query: number
  /** Leaves the channel's subscription; undefined once left (the channel registry defers the unsubscribe). */
  leaveChannel: (() => void) | undefined
  readonly unwatchChannel: () => void
}

const ignore = { current: (): void => {} }

/**
 * One presence view per channel that every `usePresence` on it shares: it keeps the
 * channel subscribed (through the ChannelRegistry, so one subscription with
 * `useChannel`), asks `presence` once it is confirmed, then applies `join`/`leave`
 * without asking again; every later confirmation (a resume after a reconnect, with
 * or without `recovered`) asks again, since changes may have been missed meanwhile.
 */
export class PresenceRegistry {
  readonly #client: () => RealtimeClient
  readonly #channels: ChannelRegistry
  readonly #entries = new Map<string, Entry>()
  readonly #watchers = new ChannelWatchers()
  #detach: (() => void) | undefined

  constructor (client: () => RealtimeClient, channels: ChannelRegistry) {
    this.#client = client
    this.#channels = channels
  }

  /** Starts (or shares) `channel`'s presence; returns the leave function. */
  join (channel: string): () => void {
    let entry = this.#entries.get(channel)
    if (entry === undefined) {
      this.#attach()
      const leaveChannel = this.#channels.join(channel, ignore)
      // A refused subscription (e.g. FORBIDDEN_CHANNEL) leaves nothing to ask: the presence fails with it.
      const unwatchChannel = this.#channels.watch(channel, () => {
        const current = this.#entries.get(channel)
        const subscription = this.#channels.state(channel)
        if (current !== undefined && subscription.status === 'failed') this.#set(channel, current, { status: 'failed', error: subscription.error })
      })
      entry = { watchers: 0, state: LOADING, buffered: undefined, query: 0, leaveChannel, unwatchChannel }
      this.#entries.set(channel, entry)
      // Already confirmed for another component: no `subscribed` will come for it.
      if (this.#channels.state(channel).status === 'subscribed') this.#fetch(channel, entry)
      this.#changed(channel)
    }
    // Back before the drop (StrictMode's remount): the channel again, which the channel registry has not let go yet.
    entry.leaveChannel ??= this.#channels.join(channel, ignore)
    entry.watchers += 1
    const joined = entry
    let left = false
    return () => {
      if (left) return
      left = true
      joined.watchers -= 1
      if (joined.watchers > 0) return
      // The channel at once, so its unsubscribe goes out with the others before an owned client closes;
      // the entry after a macrotask: StrictMode's remount keeps it and its answer.
      joined.leaveChannel?.()
      joined.leaveChannel = undefined
      setTimeout(() => { this.#drop(channel, joined) }, 0)
    }
  }

  state (channel: string): PresenceState {
    return this.#entries.get(channel)?.state ?? PRESENCE_IDLE
  }

  watch (channel: string, onChange: () => void): () => void {
    return this.#watchers.watch(channel, onChange)
  }

  #drop (channel: string, entry: Entry): void {
    if (entry.watchers > 0 || this.#entries.get(channel) !== entry) return
    this.#entries.delete(channel)
    entry.unwatchChannel()
    this.#changed(channel)
    if (this.#entries.size === 0) {
      this.#detach?.()
      this.#detach = undefined
    }
  }

  #fetch (channel: string, entry: Entry): void {
    const query = ++entry.query
    entry.buffered = []
    this.#client().presence(channel).then(
      (answer) => {
        if (this.#entries.get(channel) !== entry || entry.query !== query) return
        const presence = (entry.buffered ?? []).reduce(applyPresenceChange, answer)
        entry.buffered = undefined
        this.#set(channel, entry, { status: 'ready', presence })
      },
      (error: GatewayClientError) => {
        if (this.#entries.get(channel) !== entry || entry.query !== query) return
        entry.buffered = undefined
        this.#set(channel, entry, { status: 'failed', error })
      }
    )
  }

  #attach (): void {
    if (this.#detach !== undefined) return
    const client = this.#client()
    const offSubscribed = client.on('subscribed', (info) => {
      const entry = this.#entries.get(info.channel)
      if (entry !== undefined) this.#fetch(info.channel, entry)
    })
    const onChange = (kind: 'join' | 'leave') => (change: PresenceChange): void => {
      const entry = this.#entries.get(change.channel)
      if (entry === undefined) return
      if (entry.buffered !== undefined) entry.buffered.push([kind, change])
      else if (entry.state.status === 'ready') this.#set(change.channel, entry, { status: 'ready', presence: applyPresenceChange(entry.state.presence, [kind, change]) })
    }
    const offJoin = client.on('join', onChange('join'))
    const offLeave = client.on('leave', onChange('leave'))
    this.#detach = () => { offSubscribed(); offJoin(); offLeave() }
  }

  #set (channel: string, entry: Entry, state: PresenceState): void {
    if (this.#entries.get(channel) !== entry) return
    entry.state = state
    this.#changed(channel)
  }

  #changed (channel: string): void {
    this.#watchers.notify(channel)
  }
}
