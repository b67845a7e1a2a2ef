import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { GatewayError, errorBody } from '../errors.js'
import type { Code } from '../../protocol/codes.js'

function send (reply: FastifyReply, code: Code, status: number, message?: string): FastifyReply {
  return reply.code(status).send(errorBody(code, reply.request.id, message))
}

/**
 * Every error leaves as a SPEC §3 body carrying the request id as traceId. The
 * default 404 is replaced because it logs and echoes the URL, query string (and
 * so any ticket) included.
 */
async function errorHandlerPlugin (app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error: FastifyError | GatewayError, request, reply) => {
    if (error instanceof GatewayError) {
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds))
      if (error.statusCode >= 500) request.log.warn({ event: 'http.unavailable', code: error.code }, error.message)
      return send(reply, error.code, error.statusCode, error.message)
    }
    if (error.validation !== undefined) {
      return send(reply, 'BAD_REQUEST', 400, `${error.validationContext ?? 'request'}${error.message.replace(/^[a-z]+/, '')}`)
    }
    if (error.statusCode === 413) return send(reply, 'PAYLOAD_TOO_LARGE', 413)
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      return send(reply, 'BAD_REQUEST', error.statusCode, error.message)
    }
    request.log.error({ event: 'http.error', err: error }, 'unhandled error')
    return send(reply, 'INTERNAL_ERROR', 500)
  })

  app.setNotFoundHandler((request, reply) => send(reply, 'NOT_FOUND', 404))
}

export default fp(errorHandlerPlugin, { name: 'rtgw-error-handler', fastify: '5.x' })
