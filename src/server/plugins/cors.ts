import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import type { FastifyInstance } from 'fastify'
import { pathOf } from '../logging.js'

export interface CorsOptions {
  /** Origins whose pages may call the browser-facing routes; `null`: any. */
  readonly origins: ReadonlySet<string> | null
  /** Paths of the routes a browser page calls across origins. */
  readonly paths: ReadonlySet<string>
}

/**
 * CORS (SPEC §13) with @fastify/cors, for the routes a browser app on another
 * origin calls: `POST /ws-ticket` and `GET /v1/poll`. Anything else, and any origin
 * not listed, gets no CORS header at all (a preflight for it is a plain 404).
 * `Retry-After` and `x-request-id` are exposed: without that a page could not read
 * how long to wait, and the SDK's backoff (SPEC §6) would be blind.
 */
async function corsPlugin (app: FastifyInstance, options: CorsOptions): Promise<void> {
  await app.register(cors, {
    delegator: (request, callback) => {
      const origin = request.headers.origin
      const allowed = origin !== undefined && options.paths.has(pathOf(request.url)) &&
        (options.origins === null || options.origins.has(origin))
      if (!allowed) {
        callback(null, { origin: false })
        return
      }
      callback(null, {
        origin,
        methods: ['GET', 'POST'],
        allowedHeaders: ['Authorization', 'Content-Type'],
        exposedHeaders: ['Retry-After', 'X-Request-Id'],
        // Tokens travel in Authorization, never in cookies.
        credentials: false,
        maxAge: 600,
        strictPreflight: true
      })
    }
  })
}

export default fp(corsPlugin, { name: 'rtgw-cors', fastify: '5.x' })
