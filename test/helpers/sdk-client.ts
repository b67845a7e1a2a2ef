import WebSocket from 'ws'
import { RealtimeClient, type RealtimeClientOptions } from '../../packages/client/src/realtime-client.js'
import { userToken } from './tokens.js'

export interface Teardown { teardown (fn: () => unknown): void }

/** An SDK client of `url` over `ws`, closed when the test ends; no page listeners unless asked. */
export function clientOf (t: Teardown, url: string, options: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const client = new RealtimeClient({ url, getToken: async () => await userToken(), WebSocket, page: null, ...options })
  t.teardown(() => { client.close() })
  return client
}
