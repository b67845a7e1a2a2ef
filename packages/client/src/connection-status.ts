import type { GatewayClientError } from './errors.js'
import type { ClientStatus } from './client-events.js'

export interface ConnectionStatus {
  readonly status: ClientStatus
  readonly connected: boolean
  readonly mode: 'websocket' | 'polling'
  /** Failed attempts since the last established session. */
  readonly reconnectAttempts: number
  readonly lastError?: GatewayClientError
  readonly connectionId?: string
  readonly pendingSends: number
}
