// Compiled by tsconfig.client.json (DOM lib, no Node types): the browser's own
// WebSocket and fetch fit what the SDK asks for, so no cast is ever needed.
import type { WebSocketConstructor } from '../../../packages/client/src/websocket.js'
import type { RealtimeClientOptions } from '../../../packages/client/src/realtime-client.js'

export const browserWebSocket: WebSocketConstructor = WebSocket
export const browserFetch: RealtimeClientOptions['fetch'] = fetch
