/**
 * The Socket.IO 4 peer (issue 14), as its documentation sets it up for several
 * instances: @socket.io/redis-adapter with its own ioredis pub and sub clients on the
 * benchmark's redis-server (REDIS_URL), WebSocket transport only. What the gateway
 * does at a connect, the Socket.IO way:
 *
 * - auth: the client's JWT in the handshake's `auth` payload, verified by a `use`
 *   middleware (jose HS256, the same secret; verified tokens cached like the
 *   gateway's JWT_CACHE_SIZE cache, so a repeat user pays a map lookup);
 * - first server event `session_established` with a connection id and server time;
 * - `subscribe` {channel} → join the room, ack `subscribed`;
 * - POST /publish {channel, data} → `io.to(channel).emit('message', …)` through the
 *   adapter (local sockets directly, other instances over Redis pub/sub).
 */
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import { Redis } from 'ioredis'
import { jwtVerify } from 'jose'
import { LRUCache } from 'lru-cache'
import { Server } from 'socket.io'
import { createAdapter } from '@socket.io/redis-adapter'
import { announce, serveParent } from './ipc.js'
import { PublishEndpoint } from './publish-endpoint.js'

const redisUrl = process.env.REDIS_URL
const secret = process.env.JWT_SECRET
if (redisUrl === undefined || secret === undefined) throw new Error('REDIS_URL and JWT_SECRET are required')
const key = new TextEncoder().encode(secret)
const verified = new LRUCache<string, { readonly sub: string }>({ max: 10_000 })

const pubClient = new Redis(redisUrl)
const subClient = pubClient.duplicate()

const publishing = new PublishEndpoint((channel, offset, data) => { io.to(channel).emit('message', { channel, offset, data }) })
const server = createServer(publishing.handle)

const io = new Server(server, { transports: ['websocket'], serveClient: false, adapter: createAdapter(pubClient, subClient) })
io.use((socket, next) => {
  const token: unknown = (socket.handshake.auth as { token?: unknown }).token
  if (typeof token !== 'string') { next(new Error('unauthorized')); return }
  const cached = verified.get(token)
  if (cached !== undefined) { socket.data = cached; next(); return }
  jwtVerify(token, key, { algorithms: ['HS256'] }).then(({ payload }) => {
    const user = { sub: String(payload.sub) }
    verified.set(token, user)
    socket.data = user
    next()
  }, () => { next(new Error('unauthorized')) })
})
io.on('connection', (socket) => {
  socket.emit('session_established', { connectionId: randomUUID(), serverTime: new Date().toISOString() })
  socket.on('subscribe', (channel: unknown, ack: unknown) => {
    if (typeof channel !== 'string' || typeof ack !== 'function') return
    void socket.join(channel)
    ;(ack as (answer: unknown) => void)({ type: 'subscribed', channel, offset: publishing.offset() })
  })
})

await Promise.all([pubClient.ping(), subClient.ping()])
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
const address = server.address()
if (address === null || typeof address === 'string') throw new Error('not listening')
serveParent(async () => {
  io.disconnectSockets(true)
  await io.close()
  pubClient.disconnect()
  subClient.disconnect()
})
announce(address.port)
