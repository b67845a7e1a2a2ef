import { useCallback, useEffect, useInsertionEffect, useRef, useSyncExternalStore } from 'react'
import type { ChannelMessage } from '@realtime-gateway/client'
import { IDLE, type ChannelState } from './channel-registry.js'
import { useBinding } from './realtime-context.js'

export interface UseChannelOptions {
  /**
   * Resume point (SPEC §5): the offset after which to replay, read when the component
   * subscribes. Components on one channel share one subscription, so the first
   * component's `since` wins; a later one, and a changed `since`, never resubscribes.
   */
  readonly since?: string
  /**
   * Subscription token provider (SPEC §9), passed to `RealtimeClient.subscribe`: asked
   * before every subscribe of the channel (the first, and each resubscribe after a
   * reconnect). The latest function given is the one called; changing it never
   * resubscribes. Shared subscription: the first component's provider is used.
   */
  readonly token?: () => Promise<string>
}

const noWatch = (): (() => void) => () => {}
const idle = (): ChannelState => IDLE

/**
 * Subscribes to `channel` while the component is mounted and calls the latest
 * `onMessage` for each message (docs/react.md). Every component on a channel shares
 * one subscription. Only a new `channel` (or provider) resubscribes; `null` or
 * `undefined` subscribes to nothing.
 */
export function useChannel (
  channel: string | null | undefined,
  onMessage: (message: ChannelMessage) => void,
  options: UseChannelOptions = {}
): ChannelState {
  const binding = useBinding('useChannel')
  // Kept in a ref that the commit updates: a new inline callback on every render is
  // fine, no effect depends on it, and the message after a render reaches that render's callback.
  const handler = useRef(onMessage)
  // Read when subscribing, never a reason to resubscribe (UseChannelOptions).
  const since = useRef(options.since)
  const token = useRef(options.token)
  useInsertionEffect(() => {
    handler.current = onMessage
    since.current = options.since
    token.current = options.token
  })

  useEffect(() => {
    if (channel === null || channel === undefined) return undefined
    // Through the ref, so the provider of the latest render is the one asked.
    const first = token.current
    const provider = first === undefined ? undefined : async (): Promise<string> => await (token.current ?? first)()
    return binding.channels.join(channel, handler, { since: since.current, token: provider })
  }, [binding, channel])

  const watch = useCallback(
    (onChange: () => void) => channel === null || channel === undefined ? noWatch() : binding.channels.watch(channel, onChange),
    [binding, channel]
  )
  const snapshot = useCallback(() => channel === null || channel === undefined ? IDLE : binding.channels.state(channel), [binding, channel])
  return useSyncExternalStore(watch, snapshot, idle)
}
