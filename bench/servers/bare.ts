/**
 * The baseline: a minimal Fastify app with default options (so no logger, as
 * Fastify's default) and one route answering constant JSON of the same shape and
 * size as a ticket response, on the same method and path so the load is identical.
 * BENCH_BARE_LOG_LEVEL=info turns Fastify's default pino logger on (profiling only:
 * it prices per-request logging on an otherwise empty route).
 */
import Fastify from 'fastify'
import { announce, serveParent } from './ipc.js'

const BODY = {
  ticket: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
  expiresAt: '2030-01-01T00:00:00.000Z',
  ttlSeconds: 30
}

const logLevel = process.env.BENCH_BARE_LOG_LEVEL
const app = logLevel === undefined ? Fastify() : Fastify({ logger: { level: logLevel } })
app.post('/ws-ticket', async () => BODY)
await app.listen({ port: 0, host: '127.0.0.1' })

const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('not listening')
serveParent(async () => { await app.close() })
announce(address.port)
