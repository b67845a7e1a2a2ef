import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Starts the graceful drain (SPEC §4): readiness fails at once, new upgrades
     * are refused, open sockets are closed with 1012 over part of the grace.
     * Idempotent; `close()` calls it too.
     */
    drain: () => Promise<void>
  }
}

export interface DrainOptions {
  /** The open sockets (the hub): closed with 1012, spread over `spreadMs`, then awaited for `settleMs`. */
  readonly sockets: { readonly draining: boolean, drain: (spreadMs: number, settleMs: number) => Promise<void> }
  /** Long-polls are answered at once rather than held until the process exits. */
  readonly releaseWaiters: () => void
  readonly shutdownGraceMs: number
}

/** Share of SHUTDOWN_GRACE_MS spent spreading 1012 closes, then waiting for them. */
const DRAIN_SPREAD_SHARE = 0.4
const DRAIN_SETTLE_SHARE = 0.2

/** The drain policy: what stops, in which order, within which share of the grace. */
async function drainPlugin (app: FastifyInstance, options: DrainOptions): Promise<void> {
  const { sockets, shutdownGraceMs } = options
  // Shared, so a signal and close() draining at once wait for the same drain.
  let drained: Promise<void> | undefined
  app.decorate('drain', async () => {
    options.releaseWaiters()
    drained ??= sockets.drain(shutdownGraceMs * DRAIN_SPREAD_SHARE, shutdownGraceMs * DRAIN_SETTLE_SHARE)
    await drained
  })
  // Draining: keep-alive clients (ticket requests, long-polls) reconnect to another instance.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (sockets.draining) reply.header('connection', 'close')
    return payload
  })
}

export default fp(drainPlugin, { name: 'rtgw-drain', fastify: '5.x' })
