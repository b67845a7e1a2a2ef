/**
 * A small scripted gateway for the React presence tests (the server side of presence,
 * SPEC §11, is built separately): one HTTP server that serves the test page and its
 * script, answers `POST /ws-ticket`, and speaks enough of the protocol over `ws` at
 * `/ws`: session_established, subscribe → subscribed, presence → the members the test
 * set, publish → published plus the message (with `from`) to the channel's subscribers.
 * Page and gateway share one origin, so no CORS is involved.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import { WebSocketServer, type WebSocket } from 'ws'

type Frame = Record<string, unknown>
export interface Member { readonly userId: string, connections: number, readonly info?: unknown }

export interface FakeGateway {
  readonly url: string
  /** Members per channel, answered to `presence` (changed by the test; join/leave are pushed separately). */
  readonly members: Map<string, Member[]>
  /** Every frame the clients sent, in order. */
  readonly received: Frame[]
  /** Sends `frame` to every socket subscribed to `channel`. */
  push (channel: string, frame: Frame): void
  /** Cuts every socket (1006 on the client side). */
  dropAll (): void
  close (): Promise<void>
}

export async function startFakeGateway (page: (request: IncomingMessage, response: ServerResponse) => boolean): Promise<FakeGateway> {
  const members = new Map<string, Member[]>()
  const received: Frame[] = []
  const subscribers = new Map<WebSocket, Set<string>>()
  let offsets = 0
  let connections = 0

  const server = createServer((request, response) => {
    if (request.method === 'POST' && request.url === '/ws-ticket') {
      response.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ ticket: `t${++connections}`, expiresAt: new Date(Date.now() + 30_000).toISOString() }))
    } else if (!page(request, response)) {
      response.writeHead(404).end()
    }
  })
  server.keepAliveTimeout = 1000
  const wss = new WebSocketServer({ server, path: '/ws' })
  wss.on('connection', (socket) => {
    subscribers.set(socket, new Set())
    const send = (frame: Frame): void => { socket.send(JSON.stringify(frame)) }
    socket.on('close', () => { subscribers.delete(socket) })
    socket.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Frame
      received.push(frame)
      const channel = String(frame.channel)
      if (frame.type === 'subscribe') {
        subscribers.get(socket)?.add(channel)
        send({ type: 'subscribed', channel, id: frame.id, offset: `e:${offsets}`, recovered: true })
      } else if (frame.type === 'unsubscribe') {
        subscribers.get(socket)?.delete(channel)
        send({ type: 'unsubscribed', channel, id: frame.id })
      } else if (frame.type === 'presence') {
        const users = members.get(channel) ?? []
        send({ type: 'presence', channel, id: frame.id, users, totalUsers: users.length, totalConnections: users.reduce((sum, user) => sum + user.connections, 0), truncated: false })
      } else if (frame.type === 'publish') {
        const offset = `e:${++offsets}`
        send({ type: 'published', channel, id: frame.id, offset })
        fake.push(channel, { type: 'message', channel, offset, data: frame.data, from: 'alice' })
      } else if (frame.type === 'ping') {
        send({ type: 'pong', id: frame.id })
      }
    })
    send({ type: 'session_established', connectionId: `c${connections}`, userId: 'alice', sessionId: 's1', heartbeatIntervalMs: 30_000, serverTime: new Date().toISOString() })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port

  const fake: FakeGateway = {
    url: `http://127.0.0.1:${port}`,
    members,
    received,
    push (channel, frame) {
      for (const [socket, channels] of subscribers) if (channels.has(channel)) socket.send(JSON.stringify(frame))
    },
    dropAll () {
      for (const socket of subscribers.keys()) socket.terminate()
    },
    async close () {
      for (const socket of subscribers.keys()) socket.terminate()
      wss.close()
      await new Promise((resolve) => server.close(resolve))
    }
  }
  return fake
}
