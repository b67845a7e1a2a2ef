import type { ReadinessResponse } from '../../protocol/http.js'

/** What readiness is decided from (SPEC §3): the engine's connection and the drain. */
export interface ReadinessInputs {
  readonly engineReady: boolean
  readonly draining: boolean
}

/**
 * The `/readyz` answer, shared by the main port and the probe thread (PROBE_PORT) so
 * both say the same thing. Overload is deliberately absent: an overloaded instance is
 * ready (SPEC §13); taking it out of the Service would move its load onto the others.
 */
export function readinessAnswer (inputs: ReadinessInputs): { readonly statusCode: 200 | 503, readonly body: ReadinessResponse } {
  const checks = {
    engine: inputs.engineReady ? 'ok' as const : 'fail' as const,
    draining: inputs.draining ? 'fail' as const : 'ok' as const
  }
  const failing = Object.entries(checks).filter(([, state]) => state === 'fail').map(([name]) => name)
  if (failing.length === 0) return { statusCode: 200, body: { status: 'ready', checks } }
  return { statusCode: 503, body: { status: 'not_ready', checks, failing } }
}
