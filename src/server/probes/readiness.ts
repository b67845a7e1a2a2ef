import type { ReadinessCheck as ReadinessCheckBody, ReadinessResponse } from '../../protocol/http.js'
import type { EngineCheck } from '../engine/engine.js'

/** One check as `/readyz` decides from it: the engine's (redis, pubsub or engine) or the drain. */
export interface ReadinessCheck {
  readonly name: EngineCheck['name'] | 'draining'
  readonly ok: boolean
  readonly reason?: string | undefined
  /** Epoch milliseconds. */
  readonly since: number
}

/** What readiness is decided from (SPEC §3): the engine's checks and the drain. */
export interface ReadinessInputs {
  readonly checks: readonly ReadinessCheck[]
}

/**
 * The drain as a check with a `since`: the hub only says whether it drains, so the
 * moment is the first time it was seen draining (reads come every probe tick, 100 ms).
 */
export class DrainingCheck {
  readonly #draining: () => boolean
  #state = false
  #since = Date.now()

  constructor (draining: () => boolean) {
    this.#draining = draining
  }

  read (): ReadinessCheck {
    const draining = this.#draining()
    if (draining !== this.#state) {
      this.#state = draining
      this.#since = Date.now()
    }
    return draining ? { name: 'draining', ok: false, reason: 'SIGTERM', since: this.#since } : { name: 'draining', ok: true, since: this.#since }
  }
}

/**
 * The `/readyz` answer, shared by the main port and the probe thread (PROBE_PORT) so
 * both say the same thing. Overload is deliberately absent: an overloaded instance is
 * ready (SPEC §13); taking it out of the Service would move its load onto the others.
 */
export function readinessAnswer (inputs: ReadinessInputs): { readonly statusCode: 200 | 503, readonly body: ReadinessResponse } {
  // Every input names a check of the schema, and the drain is always among them.
  const checks = {} as Record<ReadinessCheck['name'], ReadinessCheckBody>
  for (const check of inputs.checks) {
    checks[check.name] = {
      status: check.ok ? 'ok' : 'fail',
      ...(check.ok || check.reason === undefined ? {} : { reason: check.reason }),
      since: new Date(check.since).toISOString()
    }
  }
  const failing = inputs.checks.filter((check) => !check.ok).map((check) => check.name)
  if (failing.length === 0) return { statusCode: 200, body: { status: 'ready', checks } }
  return { statusCode: 503, body: { status: 'not_ready', checks, failing } }
}
