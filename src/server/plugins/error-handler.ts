import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ENGINE_RETRY_AFTER_SECONDS, GatewayError, OVERLOADED_RETRY_AFTER_SECONDS, errorBody, jitteredRetryAfter } from '../errors.js'
import type { Code } from '../../protocol/codes.js'
import { EngineOverloadedError, EngineUnavailableError } from '../engine/engine.js'

declare module 'fastify' {
  interface FastifyReply {
    /** The machine code of an error answer, for its request log line (logging.ts). */
    errorCode: Code | null
  }
  interface FastifyContextConfig {
    /**
     * The 503 this route answers while the engine cannot serve; REDIS_NOT_READY when
     * unset. SPEC §3 gives POST /ws-ticket a text of its own (WS_TICKET_REDIS_NOT_READY).
     */
    engineUnavailableCode?: Code
  }
}

type Thrown = FastifyError | GatewayError | EngineOverloadedError | EngineUnavailableError

/** The engine's failures as the gateway reports them; other errors as they are. */
function reported (thrown: Thrown, request: FastifyRequest): FastifyError | GatewayError {
  // Our own stall, not Redis (SPEC §13).
  if (thrown instanceof EngineOverloadedError) {
    return new GatewayError('OVERLOADED', { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS, cause: thrown })
  }
  // Routes let it through: a 503 at once, never a 500 or a hang (SPEC §3).
  if (thrown instanceof EngineUnavailableError) {
    const code = request.routeOptions.config.engineUnavailableCode ?? 'REDIS_NOT_READY'
    return new GatewayError(code, { retryAfterSeconds: ENGINE_RETRY_AFTER_SECONDS, cause: thrown })
  }
  return thrown
}

function send (reply: FastifyReply, code: Code, status: number, message?: string): FastifyReply {
  reply.errorCode = code
  return reply.code(status).send(errorBody(code, reply.request.id, message))
}

/** The parts of an ajv error the message is made of. */
interface ValidationIssue {
  readonly keyword: string
  readonly instancePath: string
  readonly params: Record<string, unknown>
  readonly message?: string
}

/**
 * One line saying what to fix (SPEC §3: a misspelt field is a 400 that names it).
 * ajv's own text for an unknown field does not name it, and a failed union lists each
 * alternative's error plus a summary that adds nothing.
 */
function validationMessage (context: string, issues: readonly ValidationIssue[]): string {
  const unknown = issues.find((issue) => issue.keyword === 'additionalProperties')
  if (unknown !== undefined) return `${context}${unknown.instancePath} has unknown property '${String(unknown.params.additionalProperty)}'`
  const details = issues.filter((issue) => issue.keyword !== 'anyOf' && issue.keyword !== 'oneOf')
  const shown = details.length > 0 ? details : issues
  const lines = [...new Set(shown.map((issue) => `${context}${issue.instancePath} ${issue.message ?? 'is invalid'}`))]
  // The branches of a union are alternatives: any one of them would have done.
  return lines.join(details.length < issues.length ? ' or ' : ', ')
}

/**
 * Every error leaves as a SPEC §3 body carrying the request id as traceId; the
 * engine's failures are mapped here once, not in each route. The default 404 is
 * replaced because it logs and echoes the URL, query string (and so any ticket) included.
 */
async function errorHandlerPlugin (app: FastifyInstance): Promise<void> {
  app.decorateReply('errorCode', null)
  app.setErrorHandler((thrown: Thrown, request, reply) => {
    const error = reported(thrown, request)
    if (error instanceof GatewayError) {
      if (error.retryAfterSeconds !== undefined) reply.header('retry-after', String(jitteredRetryAfter(error.retryAfterSeconds)))
      if (error.statusCode >= 500) request.log.warn({ event: 'http.unavailable', code: error.code }, error.message)
      return send(reply, error.code, error.statusCode, error.message)
    }
    if (error.validation !== undefined) {
      return send(reply, 'BAD_REQUEST', 400, validationMessage(error.validationContext ?? 'request', error.validation))
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

/**
 * Fastify's own refusals before routing (`frameworkErrors`: a malformed URL such as
 * `/%zz?ticket=…`, a bad content type) in the SPEC §3 envelope. Fastify's default
 * answer quotes the URL, query string and so any ticket included.
 */
export function frameworkErrorHandler (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  reply.header('x-request-id', request.id)
  const message = error.code === 'FST_ERR_BAD_URL' ? 'Malformed URL' : undefined
  const status = error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400
  void send(reply, 'BAD_REQUEST', status, message)
}

export default fp(errorHandlerPlugin, { name: 'rtgw-error-handler', fastify: '5.x' })
