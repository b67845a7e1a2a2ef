/**
 * Who to tell when a channel's state changes: the useSyncExternalStore subscriptions
 * of the channel and presence registries, kept per channel.
 */
export class ChannelWatchers {
  readonly #byChannel = new Map<string, Set<() => void>>()

  /** Returns the unsubscribe function useSyncExternalStore expects. */
  watch (channel: string, onChange: () => void): () => void {
    let watchers = this.#byChannel.get(channel)
    if (watchers === undefined) {
      watchers = new Set()
      this.#byChannel.set(channel, watchers)
    }
    watchers.add(onChange)
    return () => {
      watchers.delete(onChange)
      if (watchers.size === 0 && this.#byChannel.get(channel) === watchers) this.#byChannel.delete(channel)
    }
  }

  /** A copy is walked: a watcher may unsubscribe while being told. */
  notify (channel: string): void {
    for (const watcher of [...this.#byChannel.get(channel) ?? []]) watcher()
  }
}
