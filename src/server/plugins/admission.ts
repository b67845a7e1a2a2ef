import fp from 'fastify-plugin'
import underPressure from '@fastify/under-pressure'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { GatewayError, OVERLOADED_RETRY_AFTER_SECONDS } from '../errors.js'

export interface AdmissionOptions {
  /** Mean event-loop delay (ms) over one sample past which new work is refused; 0: off. */
  readonly maxEventLoopDelayMs: number
  /** Event-loop utilization (0–1) over one sample past which new work is refused; 0: off. */
  readonly maxEventLoopUtilization: number
  readonly sampleIntervalMs: number
  /** Whether a request starts new work (a ticket, an upgrade) that may be refused. */
  readonly admits: (request: FastifyRequest) => boolean
  readonly onRefused: (request: FastifyRequest) => void
}

/**
 * Admission control (SPEC §13) on @fastify/under-pressure: while the event loop is
 * saturated, only requests that would start new sessions are refused, 503 OVERLOADED
 * with a jittered Retry-After. Open sockets, probes, metrics and backend calls go on:
 * shedding the newcomers is what keeps the loop free for them. The plugin samples the
 * loop on a timer and each request reads the last sample, so a refusal costs nothing.
 */
async function admissionPlugin (app: FastifyInstance, options: AdmissionOptions): Promise<void> {
  // The first samples after boot measure our own startup (schema compilation, the
  // Redis handshake), not load: nobody is refused until two clean samples can exist.
  let armedAt = Number.POSITIVE_INFINITY
  app.addHook('onListen', async () => { armedAt = performance.now() + 2 * options.sampleIntervalMs })

  await app.register(underPressure, {
    maxEventLoopDelay: options.maxEventLoopDelayMs,
    maxEventLoopUtilization: options.maxEventLoopUtilization,
    // The default, 'cumulative', averages over the whole process life: a saturated
    // minute would never show after a quiet hour.
    eventLoopUtilizationMode: 'interval',
    sampleInterval: options.sampleIntervalMs,
    pressureHandler: async (request) => {
      if (performance.now() < armedAt || !options.admits(request)) return
      options.onRefused(request)
      throw new GatewayError('OVERLOADED', { retryAfterSeconds: OVERLOADED_RETRY_AFTER_SECONDS })
    }
  })
}

export default fp(admissionPlugin, { name: 'rtgw-admission', fastify: '5.x' })
