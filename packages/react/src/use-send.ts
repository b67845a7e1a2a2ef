import { useCallback } from 'react'
import type { RealtimeClient } from '@realtime-gateway/client'
import { useBinding } from './realtime-context.js'

/** What `RealtimeClient.send` resolves to (the ack), passed through as it is. */
export type SendResult = Awaited<ReturnType<RealtimeClient['send']>>

/**
 * A stable `send(data)`: the same function on every render of a provider (so it can
 * sit in effect dependencies and memoized props), resolving on the gateway's `ack`
 * (SPEC §5 `send`) and rejecting as `RealtimeClient.send` does.
 */
export function useSend (): (data: unknown) => Promise<SendResult> {
  const binding = useBinding('useSend')
  return useCallback(async (data: unknown) => await binding.client.send(data), [binding])
}
