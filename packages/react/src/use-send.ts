import { useCallback } from 'react'
import { useBinding } from './realtime-context.js'

/**
 * A stable `send(data)`: the same function across renders, resolving on the
 * gateway's `ack` (SPEC §5 `send`) and rejecting as `RealtimeClient.send` does.
 */
export function useSend (): (data: unknown) => Promise<void> {
  const binding = useBinding('useSend')
  return useCallback(async (data: unknown) => { await binding.client.send(data) }, [binding])
}
