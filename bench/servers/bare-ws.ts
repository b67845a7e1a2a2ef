/**
 * The connect and memory baseline (issue 14): a bare `ws` WebSocketServer on
 * node:http, default options, no authentication. On each connection it sends one
 * `session_established`-shaped text frame, so a full connect (upgrade, first frame,
 * client-initiated close) is the least any WebSocket server can do.
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'
import { announce, serveParent } from './ipc.js'

const path = process.env.WS_PATH ?? '/ws'
const server = createServer((_req, res) => { res.writeHead(404).end() })
const wss = new WebSocketServer({ server, path })
wss.on('connection', (socket) => {
  socket.send(JSON.stringify({ type: 'session_established', connectionId: randomUUID(), serverTime: new Date().toISOString() }))
})
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

const address = server.address()
if (address === null || typeof address === 'string') throw new Error('not listening')
serveParent(async () => {
  for (const client of wss.clients) client.terminate()
  wss.close()
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
})
announce(address.port)
