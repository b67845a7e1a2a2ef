import { codes, type Code, type CodeDefinition } from '../protocol/codes.js'
import type { ErrorBody } from '../protocol/http.js'

/**
 * An error the gateway means to report: its code is a row of protocol/codes.ts,
 * which decides the HTTP status or the close code.
 */
export class GatewayError extends Error {
  override name = 'GatewayError'
  readonly code: Code
  readonly statusCode: number
  /** Seconds a client should wait before retrying, sent as `Retry-After`. */
  readonly retryAfterSeconds?: number

  constructor (code: Code, options: { message?: string, retryAfterSeconds?: number, cause?: unknown } = {}) {
    super(options.message ?? codes[code].message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    const definition: CodeDefinition = codes[code]
    this.statusCode = definition.status ?? 500
    this.retryAfterSeconds = options.retryAfterSeconds
  }
}

/** Seconds a client waits for the engine to come back (SPEC §3 503s), before jitter. */
export const ENGINE_RETRY_AFTER_SECONDS = 1

/** Seconds an overloaded instance asks a client to wait (SPEC §13), before jitter. */
export const OVERLOADED_RETRY_AFTER_SECONDS = 2

/**
 * A `Retry-After` value (whole seconds) spread over [base, base + max(2, base/2)]
 * (SPEC §13): clients refused in the same instant must not all return in the same
 * second, or the refusal repeats itself as a herd.
 */
export function jitteredRetryAfter (baseSeconds: number, random: () => number = Math.random): number {
  const base = Math.max(1, Math.ceil(baseSeconds))
  const spread = Math.max(2, Math.ceil(base / 2))
  return base + Math.floor(random() * (spread + 1))
}

/** The SPEC §3 error body for `code`. */
export function errorBody (code: Code, traceId: string, message?: string): ErrorBody {
  const definition: CodeDefinition = codes[code]
  return {
    error: definition.error ?? 'INTERNAL_SERVER_ERROR',
    code,
    message: message ?? definition.message,
    traceId
  }
}

/** Close code of a connection-ending code (throws on a table mistake, caught by tests). */
export function closeCodeOf (code: Code): number {
  const definition: CodeDefinition = codes[code]
  if (definition.close === undefined) throw new TypeError(`${code} has no close code`)
  return definition.close
}
