import { RealtimeClient, type ClientStatus, type RealtimeClientOptions } from '@realtime-gateway/client'
import { ChannelRegistry } from './channel-registry.js'
import { PresenceRegistry } from './presence-registry.js'

/** The app's own clients: one binding each, so providers that share a client share its channels. */
const shared = new WeakMap<RealtimeClient, ClientBinding>()

/**
 * What a `RealtimeProvider` hands its hooks: one client, built lazily, and the
 * registry of its channels. For a client the provider owns (built from `options`),
 * it also runs the lifecycle: connect after the first provider mounts, close when the
 * last one has unmounted. Both are decided in a deferred `settle()` so that
 * StrictMode's mount, unmount, mount opens one socket and never closes it.
 */
export class ClientBinding {
  /** True when the binding built the client and so connects and closes it. */
  readonly owned: boolean
  readonly channels: ChannelRegistry
  readonly presence: PresenceRegistry
  readonly #options: RealtimeClientOptions | undefined
  #client: RealtimeClient | undefined
  #providers = 0
  #settleTimer: ReturnType<typeof setTimeout> | undefined

  private constructor (source: { readonly options: RealtimeClientOptions } | { readonly client: RealtimeClient }) {
    if ('client' in source) {
      this.owned = false
      this.#client = source.client
    } else {
      this.owned = true
      this.#options = source.options
    }
    this.channels = new ChannelRegistry(() => this.client, () => { this.#scheduleSettle() })
    this.presence = new PresenceRegistry(() => this.client, this.channels)
  }

  /** A binding that builds its own client from `options` when first needed. */
  static own (options: RealtimeClientOptions): ClientBinding {
    return new ClientBinding({ options })
  }

  /** The binding of an app's client: the same one for every provider given it. */
  static of (client: RealtimeClient): ClientBinding {
    let binding = shared.get(client)
    if (binding === undefined) {
      binding = new ClientBinding({ client })
      shared.set(client, binding)
    }
    return binding
  }

  /**
   * The client, built on first use. Hooks reach it only in effects and event
   * handlers, so rendering on a server never builds one (it needs a WebSocket).
   */
  get client (): RealtimeClient {
    this.#client ??= new RealtimeClient(this.#options as RealtimeClientOptions)
    return this.#client
  }

  /** 'closed' until the client exists. */
  get status (): ClientStatus {
    return this.#client?.status ?? 'closed'
  }

  onStatus (listener: () => void): () => void {
    return this.client.on('status', listener)
  }

  /** A provider mounted: the first one connects an owned client (after mount: effects only). */
  retain (): void {
    this.#providers += 1
    if (this.#providers === 1 && this.owned && this.client.status === 'closed') {
      // Failures reach the app as `status` and `error` events; connect() also rejects
      // for each failed attempt while the client keeps healing, which is not an error here.
      this.client.connect().catch(() => {})
    }
  }

  /** A provider unmounted: the last one closes an owned client, unless one mounts again first. */
  release (): void {
    this.#providers -= 1
    if (this.#providers === 0) this.#scheduleSettle()
  }

  /**
   * Channels nobody rejoined are unsubscribed first, so their `unsubscribe` frames go
   * out on the socket before an owned client with no provider left closes it.
   */
  #settle (): void {
    this.#settleTimer = undefined
    this.channels.flush()
    if (this.owned && this.#providers === 0 && this.#client !== undefined && this.#client.status !== 'closed') {
      this.#client.close()
    }
  }

  #scheduleSettle (): void {
    // A macrotask: StrictMode's second mount, and any re-mount in the same commit, run before it.
    if (this.#settleTimer !== undefined) return
    this.#settleTimer = setTimeout(() => { this.#settle() }, 0)
  }
}
