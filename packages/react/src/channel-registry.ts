import type { ChannelMessage, GatewayClientError, RealtimeClient, SubscribedInfo } from '@realtime-gateway/client'
import { ChannelWatchers } from './channel-watchers.js'

/** What one component gave `useChannel`: a ref, so a re-render swaps the callback without resubscribing. */
export interface MessageHandlerRef {
  readonly current: (message: ChannelMessage) => void
}

/**
 * A channel's subscription as the hooks see it. `idle`: no component has joined it
 * yet (also every render on the server); `subscribing`: asked for, not yet
 * confirmed (the client may still be connecting); `subscribed`: confirmed, with the
 * last `subscribed` the gateway sent (a resume after a reconnect replaces it);
 * `failed`: refused (e.g. FORBIDDEN_CHANNEL) or cut short by `close()`.
 */
export type ChannelState =
  | { readonly status: 'idle' }
  | { readonly status: 'subscribing' }
  | { readonly status: 'subscribed', readonly info: SubscribedInfo }
  | { readonly status: 'failed', readonly error: GatewayClientError }

export const IDLE: ChannelState = Object.freeze({ status: 'idle' })
const SUBSCRIBING: ChannelState = Object.freeze({ status: 'subscribing' })

/** What the first component on a channel asked for; later ones share its subscription as it is. */
export interface JoinOptions {
  readonly since?: string | undefined
  /** The first joiner's subscription token provider (SPEC §9), asked before every subscribe frame. */
  readonly token?: (() => Promise<string>) | undefined
}

interface Entry {
  readonly handlers: Set<MessageHandlerRef>
  /** The first joiner's resume point: one subscription per channel, so the first `since` wins. */
  readonly since: string | undefined
  readonly token: (() => Promise<string>) | undefined
  state: ChannelState
}

/**
 * The one subscription per channel that every component on it shares (issue 11):
 * the first `join` subscribes, the last `leave` unsubscribes. A leave is not acted
 * on at once but at the next `flush()`, which the binding defers to a macrotask:
 * StrictMode's unmount-and-remount, or a component that moves in the tree, joins
 * again before that and no `unsubscribe`/`subscribe` pair reaches the gateway.
 */
export class ChannelRegistry {
  readonly #client: () => RealtimeClient
  readonly #onIdle: () => void
  readonly #entries = new Map<string, Entry>()
  readonly #watchers = new ChannelWatchers()
  #detach: (() => void) | undefined

  /** `client` is called only when a channel is joined (never while rendering); `onIdle` asks for a `flush()`. */
  constructor (client: () => RealtimeClient, onIdle: () => void) {
    this.#client = client
    this.#onIdle = onIdle
  }

  /**
   * Adds a handler to `channel`, subscribing if it is the first (with its `since`);
   * a later join, also one with another `since`, shares that subscription. Returns the leave function.
   */
  join (channel: string, handler: MessageHandlerRef, options: JoinOptions = {}): () => void {
    let entry = this.#entries.get(channel)
    if (entry === undefined) {
      entry = { handlers: new Set(), since: options.since, token: options.token, state: SUBSCRIBING }
      this.#entries.set(channel, entry)
      this.#attach()
      this.#subscribe(channel, entry)
      this.#changed(channel)
    }
    entry.handlers.add(handler)
    let left = false
    return () => {
      if (left) return
      left = true
      const current = this.#entries.get(channel)
      if (current === undefined) return
      current.handlers.delete(handler)
      if (current.handlers.size === 0) this.#onIdle()
    }
  }

  /** Unsubscribes every channel nobody has joined again since its last leave. */
  flush (): void {
    for (const [channel, entry] of [...this.#entries]) {
      if (entry.handlers.size > 0) continue
      this.#entries.delete(channel)
      this.#client().unsubscribe(channel)
      this.#changed(channel)
    }
    if (this.#entries.size === 0) {
      this.#detach?.()
      this.#detach = undefined
    }
  }

  /** A stable snapshot for useSyncExternalStore: a new object only when something changed. */
  state (channel: string): ChannelState {
    return this.#entries.get(channel)?.state ?? IDLE
  }

  watch (channel: string, onChange: () => void): () => void {
    return this.#watchers.watch(channel, onChange)
  }

  /** Channels with at least one handler or a leave not yet flushed. */
  get channels (): string[] {
    return [...this.#entries.keys()]
  }

  #subscribe (channel: string, entry: Entry): void {
    // The first subscriber's `since` is where the shared subscription starts; after a
    // reconnect the client resumes from the last offset it saw by itself.
    const options = { ...(entry.since === undefined ? {} : { since: entry.since }), ...(entry.token === undefined ? {} : { token: entry.token }) }
    this.#client().subscribe(channel, entry.since === undefined && entry.token === undefined ? undefined : options).then(
      (info) => { this.#set(channel, entry, { status: 'subscribed', info }) },
      (error: GatewayClientError) => {
        // UNSUBSCRIBED: our own flush overtook the confirmation; the entry is gone.
        if (error.code !== 'UNSUBSCRIBED') this.#set(channel, entry, { status: 'failed', error })
      }
    )
  }

  /** One message and one subscribed listener per client, dispatching by channel. */
  #attach (): void {
    if (this.#detach !== undefined) return
    const client = this.#client()
    const offMessage = client.on('message', (message) => { this.#dispatch(message) })
    // A resume after a reconnect (or a client closed and connected again) confirms anew.
    const offSubscribed = client.on('subscribed', (info) => {
      const entry = this.#entries.get(info.channel)
      if (entry !== undefined) this.#set(info.channel, entry, { status: 'subscribed', info })
    })
    this.#detach = () => { offMessage(); offSubscribed() }
  }

  #dispatch (message: ChannelMessage): void {
    const entry = this.#entries.get(message.channel)
    if (entry === undefined) return
    let failure: { error: unknown } | undefined
    for (const handler of [...entry.handlers]) {
      // One component's throwing handler must not starve the others on the channel;
      // the first error goes on to the client, which logs it and keeps the connection.
      try {
        handler.current(message)
      } catch (error) {
        failure ??= { error }
      }
    }
    if (failure !== undefined) throw failure.error
  }

  #set (channel: string, entry: Entry, state: ChannelState): void {
    if (this.#entries.get(channel) !== entry) return
    const previous = entry.state
    if (previous.status === 'subscribed' && state.status === 'subscribed' &&
      previous.info.offset === state.info.offset && previous.info.recovered === state.info.recovered) return
    entry.state = state
    this.#changed(channel)
  }

  #changed (channel: string): void {
    this.#watchers.notify(channel)
  }
}
