// Compiled by tsconfig.check.json (Node types): the `ws` package fits as is.
import WebSocket from 'ws'
import type { WebSocketConstructor } from '../../../packages/client/src/websocket.js'

export const nodeWebSocket: WebSocketConstructor = WebSocket
