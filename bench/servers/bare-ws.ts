/**
 * The connect and memory baseline (issue 14): a bare `ws` WebSocketServer on
 * node:http, default options, no authentication. On each connection it sends one
 * `session_established`-shaped text frame, so a full connect (upgrade, first frame,
 * client-initiated close) is the least any WebSocket server can do.
 *
 * For bench/scale.ts, also what a hand-written `ws` server adds for the same job:
 * BENCH_HEARTBEAT_MS turns on ws's documented heartbeat (one sweep pinging every
 * socket, terminating those that missed the previous pong), `subscribe` frames join
 * a channel (answered `subscribed`) and POST /publish {channel, data} sends one
 * serialized `message` frame to every subscriber.
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'
import { announce, serveParent } from './ipc.js'
import { PublishEndpoint } from './publish-endpoint.js'

const path = process.env.WS_PATH ?? '/ws'
const heartbeatMs = Number(process.env.BENCH_HEARTBEAT_MS ?? '0')
const subscribers = new Map<string, Set<WebSocket>>()
const alive = new WeakSet<WebSocket>()

// Serialized and encoded once, sent as a text frame to every subscriber (ws' broadcast pattern).
const publishing = new PublishEndpoint((channel, offset, data) => {
  const frame = Buffer.from(JSON.stringify({ type: 'message', channel, offset, data }))
  for (const socket of subscribers.get(channel) ?? []) socket.send(frame, { binary: false })
})
const server = createServer(publishing.handle)
const wss = new WebSocketServer({ server, path })
wss.on('connection', (socket) => {
  socket.send(JSON.stringify({ type: 'session_established', connectionId: randomUUID(), serverTime: new Date().toISOString() }))
  if (heartbeatMs > 0) {
    alive.add(socket)
    socket.on('pong', () => { alive.add(socket) })
  }
  socket.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as { type?: string, channel?: string, id?: unknown }
    if (frame.type !== 'subscribe' || typeof frame.channel !== 'string') return
    let set = subscribers.get(frame.channel)
    if (set === undefined) { set = new Set(); subscribers.set(frame.channel, set) }
    set.add(socket)
    socket.send(JSON.stringify({ type: 'subscribed', channel: frame.channel, id: frame.id, offset: publishing.offset(), recovered: true }))
  })
  socket.on('close', () => { for (const set of subscribers.values()) set.delete(socket) })
})
if (heartbeatMs > 0) {
  setInterval(() => {
    for (const socket of wss.clients) {
      if (!alive.has(socket)) { socket.terminate(); continue }
      alive.delete(socket)
      socket.ping()
    }
  }, heartbeatMs).unref()
}
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))

const address = server.address()
if (address === null || typeof address === 'string') throw new Error('not listening')
serveParent(async () => {
  for (const client of wss.clients) client.terminate()
  wss.close()
  await new Promise<void>((resolve) => server.close(() => { resolve() }))
})
announce(address.port)
