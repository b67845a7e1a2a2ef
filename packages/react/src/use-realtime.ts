import type { RealtimeClient } from '@realtime-gateway/client'
import { useBinding } from './realtime-context.js'

/**
 * The provider's `RealtimeClient`, for what the hooks do not cover (presence,
 * `ready()`, `getConnectionStatus()`). Call it in effects and event handlers: an
 * owned client is built on first use, and on a server that needs `options.WebSocket`.
 */
export function useRealtime (): RealtimeClient {
  return useBinding('useRealtime').client
}
