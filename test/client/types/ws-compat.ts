// Compiled by tsconfig.check.json (Node types): the `ws` package fits as is.
import WebSocket from 'ws'
import type { WebSocketConstructor } from '../../../src/client/websocket.js'

export const nodeWebSocket: WebSocketConstructor = WebSocket
