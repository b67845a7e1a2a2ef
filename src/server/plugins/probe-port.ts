import { once } from 'node:events'
import { Worker } from 'node:worker_threads'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ProbeState } from '../probes/probe-state.js'
import type { ReadinessInputs } from '../probes/readiness.js'
import type { ProbeWorkerData } from '../probes/probe-worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The port the probe thread listens on (PROBE_PORT); null when probes are on the main port only. */
    probePort: () => number | null
  }
}

export interface ProbePortOptions {
  /** PROBE_PORT; undefined: no probe thread. */
  readonly port?: number
  readonly host: string
  readonly inputs: () => ReadinessInputs
}

/** How often the main loop writes readiness and its sign of life for the probe thread. */
const TICK_MS = 100
/** The main loop silent this long: the probe thread's /livez fails, and the kubelet restarts the pod. */
const LIVENESS_STALL_MS = 10_000

/**
 * PROBE_PORT: `/livez` and `/readyz` answered by a thread of their own (probes/probe-worker.ts),
 * in milliseconds whatever the main loop is doing (SPEC §3, §13). The main port keeps its own
 * probe routes; the Kubernetes manifests point the kubelet at this port.
 */
async function probePortPlugin (app: FastifyInstance, options: ProbePortOptions): Promise<void> {
  let bound: number | null = null
  app.decorate('probePort', () => bound)
  const port = options.port
  if (port === undefined) return

  const state = new ProbeState()
  const publish = (): void => { state.update(options.inputs()) }
  publish()
  const timer = setInterval(publish, TICK_MS)
  timer.unref()
  let worker: Worker | undefined

  app.addHook('onReady', async () => {
    const workerData: ProbeWorkerData = { buffer: state.buffer, host: options.host, port, stallMs: LIVENESS_STALL_MS }
    worker = new Worker(new URL('../probes/probe-worker.js', import.meta.url), { workerData })
    worker.unref()
    const [message] = await once(worker, 'message') as [{ listening?: number, error?: string }]
    if (message.listening === undefined) throw new Error(`PROBE_PORT ${port}: ${message.error ?? 'the probe thread did not start'}`)
    bound = message.listening
    app.log.info({ event: 'probes.listening', port: bound }, 'probes served by their own thread')
  })
  // Drain and close flip readiness at once, not at the next tick.
  app.addHook('preClose', async () => { publish() })
  app.addHook('onClose', async () => {
    clearInterval(timer)
    // The thread holds nothing worth a goodbye: stopping it closes its listener and sockets.
    await worker?.terminate()
  })
}

export default fp(probePortPlugin, { name: 'rtgw-probe-port', fastify: '5.x' })
