import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { ConsumeResult } from '../tickets/ticket-service.js'
import { Connection, type FrameHandler } from '../ws/connection.js'
import { GatewayError, closeCodeOf } from '../errors.js'
import { OtherErrors, errorResponses } from '../../protocol/http.js'
import { ChannelAccess } from '../channels/channel-access.js'
import { EngineUnavailableError } from '../engine/engine.js'
import type { SendFrame } from '../../protocol/frames.js'
import { answerPresence } from '../ws/presence-requests.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** Outcome of the ticket, consumed before the upgrade. */
    handshake: ConsumeResult | null
    /** The upgrade's ServerResponse, let go of once the socket is open (releaseHandshake). */
    upgradeResponse: ServerResponse | null
  }
}

/**
 * Errors on an open socket, for every socket alike. What @fastify/websocket attaches
 * instead is a closure over the upgrade's request and reply, which would keep both
 * (and the IncomingMessage, ServerResponse and their headers) for the socket's whole
 * life. ws has already answered its own WS_ERR_* with the right close code; anything
 * else cuts the socket, as plugins/websocket.ts's handler does.
 */
function onOpenSocketError (this: WebSocket, error: Error): void {
  if ((error as NodeJS.ErrnoException).code?.startsWith('WS_ERR_') !== true) this.terminate()
}

/**
 * Lets go of the upgrade's HTTP objects (issue 14: about 4 KiB per idle connection):
 * the socket's link to the ServerResponse (and so to the request, the reply and the
 * response's listeners) and @fastify/websocket's error listener closing over them.
 */
function releaseHandshake (socket: WebSocket, request: FastifyRequest): void {
  socket.removeAllListeners('error')
  socket.on('error', onOpenSocketError)
  const response = request.upgradeResponse
  request.upgradeResponse = null
  if (response !== null && request.raw.socket !== null) response.detachSocket(request.raw.socket)
}

export interface WsRouteOptions {
  readonly path: string
  /** `null` allows any Origin. */
  readonly allowedOrigins: ReadonlySet<string> | null
  readonly heartbeatIntervalMs: number
  readonly messageRate: { readonly perSecond: number, readonly burst: number }
  readonly maxBufferedBytes: number
}

/** What `ws` itself requires of an upgrade (RFC 6455 §4.2.1); checked here, before the ticket is spent. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/
const WEBSOCKET_VERSIONS = new Set(['8', '13'])
const SUBPROTOCOL_LIST = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*,[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+)*$/

/**
 * Why `ws` would refuse this upgrade with 400 after the route's hooks ran, or
 * undefined. Refusing it first keeps the ticket unspent (issue 9): a client whose
 * upgrade was malformed can retry with the same ticket.
 */
function malformedUpgrade (headers: Record<string, string | string[] | undefined>): string | undefined {
  const key = headers['sec-websocket-key']
  if (typeof key !== 'string' || !WEBSOCKET_KEY.test(key)) return 'Missing or invalid Sec-WebSocket-Key header'
  const version = headers['sec-websocket-version']
  if (typeof version !== 'string' || !WEBSOCKET_VERSIONS.has(version.trim())) return 'Missing or invalid Sec-WebSocket-Version header'
  const protocols = headers['sec-websocket-protocol']
  if (protocols !== undefined && (typeof protocols !== 'string' || !SUBPROTOCOL_LIST.test(protocols.trim()))) return 'Invalid Sec-WebSocket-Protocol header'
  return undefined
}

const HandshakeQuery = Type.Object({
  // Length is not limited here: an oversized ticket is an invalid ticket (4401), not a 400.
  ticket: Type.Optional(Type.String({ description: 'The one-time ticket from POST /ws-ticket' }))
})

/**
 * GET /ws?ticket=T (SPEC §4). The Origin is checked and the ticket consumed in
 * hooks, before the upgrade: a refused Origin never gets a socket, and the handler
 * runs synchronously after the upgrade so no early frame is missed.
 */
export default async function wsRoute (app: FastifyInstance, options: WsRouteOptions): Promise<void> {
  app.decorateRequest('handshake', null)
  app.decorateRequest('upgradeResponse', null)

  /** Appended once per (session, id), acked every time: a retried send is safe (SPEC §5). */
  const sendUpstream = async (connection: Connection, frame: SendFrame): Promise<void> => {
    const { userId, sessionId, connectionId } = connection.identity
    try {
      await app.engine.appendInbound({ userId, sessionId, connectionId, id: String(frame.id), data: JSON.stringify(frame.data ?? null) })
      connection.send({ type: 'ack', id: frame.id })
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) throw err
      connection.send({ type: 'error', code: 'REDIS_NOT_READY', id: frame.id })
    }
  }

  const onFrame: FrameHandler = async (connection, frame) => {
    switch (frame.type) {
      case 'ping':
        connection.send(frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id })
        return
      case 'subscribe':
        if (await app.channelRequests.subscribe(connection, frame)) {
          app.lifecycle.subscribe(connection.identity, frame.channel)
          // SPEC §11: present while subscribed; a connection that closed meanwhile is not entered.
          if (connection.isOpen) await app.presence.enter(connection, frame.channel)
        }
        return
      case 'unsubscribe':
        if (await app.channelRequests.unsubscribe(connection, frame)) {
          app.lifecycle.unsubscribe(connection.identity, frame.channel)
          await app.presence.exit(connection, frame.channel)
        }
        return
      case 'presence':
        await answerPresence(app.presence, connection, frame)
        return
      case 'send':
        await sendUpstream(connection, frame)
        return
      case 'publish':
        await app.channelRequests.publish(connection, frame)
    }
  }

  app.withTypeProvider<TypeBoxTypeProvider>().get(options.path, {
    websocket: true,
    // @fastify/websocket hides WebSocket routes from the OpenAPI document; the handshake
    // is part of the HTTP API (SPEC §4), so it is listed.
    config: { swaggerTransform: ({ schema, url }) => ({ schema: { ...schema, hide: false }, url }) },
    schema: {
      tags: ['client'],
      summary: 'The WebSocket (upgrade with a ticket from POST /ws-ticket)',
      description: 'After the upgrade: `session_established` as the first frame, or an error frame and close 4401 (ticket missing, unknown, expired or used), 1013 WS_TICKET_REDIS_NOT_READY, 1012 SERVER_RESTART while draining. Frames and close codes: docs/protocol.md.',
      querystring: HandshakeQuery,
      response: {
        101: { type: 'null', description: 'Switching Protocols: the WebSocket session starts' },
        ...errorResponses('BAD_REQUEST', 'ORIGIN_NOT_ALLOWED', 'UPGRADE_REQUIRED', 'OVERLOADED'),
        default: OtherErrors
      }
    },
    onRequest: async (request, reply) => {
      if (!request.ws) {
        reply.header('upgrade', 'websocket')
        throw new GatewayError('UPGRADE_REQUIRED')
      }
      const origin = request.headers.origin
      if (origin !== undefined && options.allowedOrigins !== null && !options.allowedOrigins.has(origin)) {
        request.log.info({ event: 'ws.origin_rejected', origin: origin.slice(0, 200) }, 'origin not allowed')
        app.metrics.connect('403')
        throw new GatewayError('ORIGIN_NOT_ALLOWED')
      }
      const malformed = malformedUpgrade(request.headers)
      if (malformed !== undefined) throw new GatewayError('BAD_REQUEST', { message: malformed })
    },
    preHandler: async (request, reply) => {
      request.upgradeResponse = reply.raw
      // While draining the socket is closed with 1012 anyway: keep the ticket for another instance.
      if (app.hub.draining) return
      request.handshake = await app.tickets.consume(request.query.ticket)
    }
  }, (socket, request) => {
    releaseHandshake(socket, request)
    if (app.hub.draining) {
      app.metrics.connect('1012')
      socket.close(closeCodeOf('SERVER_RESTART'), 'SERVER_RESTART')
      return
    }
    const handshake = request.handshake
    if (handshake === null || !handshake.ok) {
      const { code, reason } = handshake ?? { code: 'WS_TICKET_MISSING', reason: 'missing' } as const
      if (code === 'WS_TICKET_REDIS_NOT_READY') {
        app.metrics.connect('1013')
        socket.close(closeCodeOf(code), code)
        return
      }
      request.log.info({ event: 'ticket.rejected', reason }, 'websocket ticket rejected')
      // SPEC §3: a ticket of a banned user or session is refused with 4403, so the client stops.
      app.metrics.connect(code === 'SESSION_REVOKED' ? '4403' : '4401')
      app.metrics.messagesOut.error += 1
      socket.send(JSON.stringify({ type: 'error', code }))
      socket.close(closeCodeOf(code), code)
      return
    }

    const { record } = handshake
    const identity = { connectionId: randomUUID(), userId: record.sub, sessionId: record.sessionId }
    const connection = new Connection(socket, {
      identity,
      access: new ChannelAccess({ userId: record.sub, sessionId: record.sessionId, channelPatterns: record.channels, publishPatterns: record.publish ?? [] }),
      info: record.info,
      logger: app.log,
      logBindings: { traceId: request.id },
      messageRate: options.messageRate,
      maxBufferedBytes: options.maxBufferedBytes,
      metrics: app.metrics,
      onFrame,
      onClose: (closed, code, reason) => {
        app.relay.remove(closed)
        app.hub.remove(closed)
        // After the registration settled, so a close racing it still frees the user's slot.
        void registered.then(async () => { await app.presence.close(closed) })
        // SPEC §12: every close, the drain's 1012 included.
        app.lifecycle.disconnect(closed.identity, code, reason)
      }
    })
    // SPEC §11: counted against WS_MAX_CONNECTIONS_PER_USER on every instance; past it, closed 4429 right after the handshake.
    const registered = app.presence.register(identity, Date.now()).then((admitted) => {
      if (!admitted) connection.closeWith('TOO_MANY_CONNECTIONS')
    })
    app.hub.add(connection)
    app.metrics.connect('established')
    connection.send({
      type: 'session_established',
      ...identity,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      serverTime: new Date().toISOString()
    })
    connection.debug({ event: 'ws.session_established', userId: identity.userId }, 'session established')
    app.lifecycle.connect(identity)
  })
}
