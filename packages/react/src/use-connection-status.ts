import { useCallback, useSyncExternalStore } from 'react'
import type { ClientStatus } from '@realtime-gateway/client'
import { useBinding } from './realtime-context.js'

const serverStatus = (): ClientStatus => 'closed'

/** The client's `status` (connecting | open | reconnecting | polling | closed), re-rendering on each change. */
export function useConnectionStatus (): ClientStatus {
  const binding = useBinding('useConnectionStatus')
  const subscribe = useCallback((onChange: () => void) => binding.onStatus(onChange), [binding])
  const getSnapshot = useCallback(() => binding.status, [binding])
  return useSyncExternalStore(subscribe, getSnapshot, serverStatus)
}
