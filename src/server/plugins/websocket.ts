import fp from 'fastify-plugin'
import websocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'
import { errorBody } from '../errors.js'

export interface WebsocketOptions {
  /** The one route that upgrades (WS_PATH). */
  readonly path: string
  readonly maxPayloadBytes: number
}

/** @fastify/websocket as the gateway needs it: ws's own close codes, 1012 on close, one upgrade path. */
async function websocketPlugin (app: FastifyInstance, options: WebsocketOptions): Promise<void> {
  await app.register(websocket, {
    options: { maxPayload: options.maxPayloadBytes },
    // Errors on an open socket (e.g. an oversize frame) are already answered by ws
    // with the right close code; the default handler would cut the socket first.
    errorHandler: (error, socket, request) => {
      const code = (error as NodeJS.ErrnoException).code
      request.log.debug({ event: 'ws.socket_error', code }, 'websocket error')
      if (code?.startsWith('WS_ERR_') !== true) socket.terminate()
    },
    // The default closes sockets without a code; clients must see 1012 (SPEC §4).
    preClose: async () => {
      await app.drain()
      app.websocketServer.close()
    }
  })

  // @fastify/websocket logs the full URL of upgrades to non-WebSocket routes: refuse them
  // first. (Registered after the plugin, whose own hook sets `request.ws`.)
  app.addHook('onRequest', async (request, reply) => {
    if (request.ws && request.routeOptions.url !== options.path) {
      return await reply.code(404).send(errorBody('NOT_FOUND', request.id))
    }
  })
}

export default fp(websocketPlugin, { name: 'rtgw-websocket', fastify: '5.x', dependencies: ['rtgw-drain'] })
