import { useCallback, useEffect, useSyncExternalStore } from 'react'
import { PRESENCE_IDLE, type PresenceState } from './presence-registry.js'
import { useBinding } from './realtime-context.js'

const noWatch = (): (() => void) => () => {}
const idle = (): PresenceState => PRESENCE_IDLE

/**
 * Who is in `channel` (SPEC §11), kept live: subscribes to the channel while mounted
 * (sharing the subscription with `useChannel`), asks the gateway once it is
 * confirmed, then applies each `join`/`leave` without asking again; it asks again
 * after a reconnect. Every component on a channel shares one view. `null` or
 * `undefined`: nothing (`idle`).
 */
export function usePresence (channel: string | null | undefined): PresenceState {
  const binding = useBinding('usePresence')
  useEffect(() => {
    if (channel === null || channel === undefined) return undefined
    return binding.presence.join(channel)
  }, [binding, channel])
  const watch = useCallback(
    (onChange: () => void) => channel === null || channel === undefined ? noWatch() : binding.presence.watch(channel, onChange),
    [binding, channel]
  )
  const snapshot = useCallback(() => channel === null || channel === undefined ? PRESENCE_IDLE : binding.presence.state(channel), [binding, channel])
  return useSyncExternalStore(watch, snapshot, idle)
}
