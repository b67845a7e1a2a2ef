import { randomUUID } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { LogController, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { DestinationStream } from 'pino'
import type { LogLevel } from './config.js'

/** A caller's request id is honoured only when it is short and plain (no log injection). */
const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/

export function requestIdOf (request: IncomingMessage): string {
  const header = request.headers['x-request-id']
  return typeof header === 'string' && REQUEST_ID_PATTERN.test(header) ? header : randomUUID()
}

/** The path of a request URL: query strings carry tickets and never reach a log (SPEC §4). */
export function pathOf (url: string | undefined): string {
  if (url === undefined) return ''
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}

/**
 * Fastify logger options. Requests are serialized as method + path + id only, so
 * headers (Authorization) and query strings (tickets) never reach a line. No pino
 * `redact`: it costs CPU on every line and the serializers already leave nothing
 * to redact (test/integration/logs.test.ts checks the whole flow).
 */
export function loggerOptions (level: LogLevel, stream?: DestinationStream): NonNullable<FastifyServerOptions['logger']> {
  return {
    level,
    ...(stream === undefined ? {} : { stream }),
    serializers: {
      req: (request: { method: string, url: string, id: string }) => ({ method: request.method, path: pathOf(request.url), id: request.id }),
      res: (reply: { statusCode: number }) => ({ statusCode: reply.statusCode })
    }
  }
}

/**
 * Fastify's request log lines, reduced to one per response. The defaults log the
 * incoming request and, on 404, the full URL: both would carry `?ticket=`.
 */
export class GatewayLogController extends LogController {
  constructor () {
    super({ requestIdLogLabel: 'traceId' })
  }

  override incomingRequest (): void {}

  override routeNotFound (): void {}

  override requestCompleted (error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const line = {
      event: 'http.request',
      req: request,
      res: reply,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      // Why it was refused, in the table's words (docs/operations.md reads logs by code).
      ...(reply.errorCode === null || reply.errorCode === undefined ? {} : { code: reply.errorCode })
    }
    if (error) reply.log.error({ ...line, err: error }, 'request errored')
    // Probes and scrapes run every few seconds: their lines would drown the rest.
    else if ((request.routeOptions.config as { accessLog?: string }).accessLog === 'debug') reply.log.debug(line, 'request completed')
    else if (reply.statusCode >= 500) reply.log.warn(line, 'request completed')
    // Refusals are worth a line at info. Successes are at debug: on the ticket hot path
    // a line per request is a measurable share of its CPU, and the ingress in front of
    // the gateway keeps access logs anyway (docs/operations.md).
    else if (reply.statusCode >= 400) reply.log.info(line, 'request completed')
    else reply.log.debug(line, 'request completed')
  }
}
