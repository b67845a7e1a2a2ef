import { useCallback, useEffect, useInsertionEffect, useRef, useSyncExternalStore } from 'react'
import type { ChannelMessage } from '@realtime-gateway/client'
import { IDLE, type ChannelState } from './channel-registry.js'
import { useBinding } from './realtime-context.js'

export interface UseChannelOptions {
  /**
   * Resume point and subscription token (SPEC §5, §9). Accepted so that app code can
   * state them now; they take effect once the client's `subscribe` takes them (it
   * takes only the channel today, and keeps resuming from the last offset it saw
   * by itself). Changing them never resubscribes.
   */
  readonly since?: string
  readonly token?: string
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
  useInsertionEffect(() => { handler.current = onMessage })
  // See UseChannelOptions: nothing to pass them to yet.
  void options

  useEffect(() => {
    if (channel === null || channel === undefined) return undefined
    return binding.channels.join(channel, handler)
  }, [binding, channel])

  const watch = useCallback(
    (onChange: () => void) => channel === null || channel === undefined ? noWatch() : binding.channels.watch(channel, onChange),
    [binding, channel]
  )
  const snapshot = useCallback(() => channel === null || channel === undefined ? IDLE : binding.channels.state(channel), [binding, channel])
  return useSyncExternalStore(watch, snapshot, idle)
}
