import { Backoff, type BackoffOptions } from './backoff.js'
import { AuthenticationError, causeText, ConnectionError, TicketError, type GatewayClientError } from './errors.js'
import { codes, type ClientAction, type CodeDefinition } from '../../../src/protocol/codes.js'
import type { ErrorFrame } from '../../../src/protocol/server-frames.js'

/** How one attempt ended: the policy decides what comes next from it. */
export type AttemptOutcome =
  /** No socket was had: the ticket could not be fetched, or the WebSocket could not be built. */
  | { readonly kind: 'failed', readonly error: GatewayClientError }
  /** `url`: the socket's, without its ticket; `cause`: what the socket reported (its error, the error frame, the timeout). */
  | { readonly kind: 'closed', readonly code: number, readonly reason: string, readonly established: boolean, readonly errorFrame?: ErrorFrame, readonly url?: string, readonly cause?: unknown }
  | { readonly kind: 'stopped' }

export type ReconnectDecision =
  /** Terminal; `failure`, when given, is reported first as the attempt's own error. */
  | { readonly kind: 'stop', readonly error: GatewayClientError, readonly failure?: GatewayClientError }
  /** The ticket was refused once: connect again at once, with a fresh one. */
  | { readonly kind: 'fresh-ticket' }
  /** The ticket service cannot store tickets: poll, and probe the WebSocket after `delayOf`. */
  | { readonly kind: 'poll', readonly failure: GatewayClientError }
  /** Reconnect after `delayOf`; `floorMs` when the server asked for less traffic. */
  | { readonly kind: 'reconnect', readonly failure: GatewayClientError, readonly floorMs: number }

export interface ReconnectPolicyOptions {
  /** Consecutive failed reconnects before giving up (default: never). */
  readonly maxAttempts?: number
  /** Reconnect delays: 1 s doubling to 16 s by default (SPEC §6). */
  readonly backoff?: BackoffOptions
  /** WebSocket probes while polling: 5 s doubling to 60 s by default. */
  readonly probeBackoff?: BackoffOptions
}

const rows: ReadonlyArray<[string, CodeDefinition]> = Object.entries(codes)

/**
 * What the code table says a client does about a close: the row named by the close
 * reason when it carries this close code, else any row with it. Close codes the table
 * does not know (1000, 1006, this client's own 4000) are network trouble: retry.
 */
export function closeActionOf (closeCode: number, reason = ''): ClientAction {
  const named = rows.find(([code, row]) => code === reason && row.close === closeCode)
  return (named ?? rows.find(([, row]) => row.close === closeCode))?.[1].action ?? 'retry'
}

/**
 * The reconnect policy (SPEC §6): reads the code table's `action` for each close.
 * `stop` is a revoked session (AuthenticationError, never reconnect); `reauth` is a
 * refused ticket (one fresh ticket at once, then AuthenticationError); `backoff` waits
 * at least the initial delay; the rest (`retry`, and `fix` for a frame the server
 * could not take) reconnects with full-jitter backoff. A failed ticket request was
 * already retried by the TicketManager as its answer asked, so only its class counts.
 */
export class ReconnectPolicy {
  readonly #options: ReconnectPolicyOptions
  readonly #backoff: Backoff
  readonly #probeBackoff: Backoff
  #ticketRetried = false

  constructor (options: ReconnectPolicyOptions = {}) {
    this.#options = options
    this.#backoff = new Backoff(options.backoff)
    this.#probeBackoff = new Backoff({ initialMs: 5000, maxMs: 60_000, ...options.probeBackoff })
  }

  /** Failed attempts since the last established session. */
  get attempts (): number {
    return this.#backoff.attempts
  }

  /** A session was established: the next failure starts from the first delay again. */
  established (wasPolling: boolean): void {
    this.#backoff.reset()
    if (wasPolling) this.#probeBackoff.reset()
  }

  decide (outcome: Exclude<AttemptOutcome, { kind: 'stopped' }>, polling: boolean): ReconnectDecision {
    if (outcome.kind === 'closed' && outcome.established) this.#ticketRetried = false
    const action = outcome.kind === 'closed' ? closeActionOf(outcome.code, outcome.reason) : undefined
    const error = errorOf(outcome, action)
    if (error instanceof AuthenticationError) return { kind: 'stop', error }
    if (outcome.kind === 'closed' && action === 'reauth') {
      if (this.#ticketRetried) return { kind: 'stop', error: new AuthenticationError(error.code, `the gateway refused a fresh ticket too; ${error.message}`, { status: outcome.code, cause: error }) }
      // The refused ticket was marked used when its socket opened: the retry fetches a new one.
      this.#ticketRetried = true
      return { kind: 'fresh-ticket' }
    }
    if (polling || (error instanceof TicketError && error.code === 'WS_TICKET_REDIS_NOT_READY')) return { kind: 'poll', failure: error }
    const maxAttempts = this.#options.maxAttempts ?? Number.POSITIVE_INFINITY
    if (this.#backoff.attempts >= maxAttempts) {
      return { kind: 'stop', failure: error, error: new ConnectionError('RECONNECT_FAILED', `gave up after ${maxAttempts} failed attempts; the last: ${error.message}`, { cause: error }) }
    }
    // The server asked for less (4429): never come straight back.
    return { kind: 'reconnect', failure: error, floorMs: action === 'backoff' ? this.#options.backoff?.initialMs ?? 1000 : 0 }
  }

  /** The wait before the next attempt, counting it. */
  delayOf (decision: Extract<ReconnectDecision, { kind: 'poll' | 'reconnect' }>): number {
    if (decision.kind === 'poll') return this.#probeBackoff.next()
    return Math.max(this.#backoff.next(), decision.floorMs)
  }
}

function errorOf (outcome: Exclude<AttemptOutcome, { kind: 'stopped' }>, action: ClientAction | undefined): GatewayClientError {
  if (outcome.kind === 'failed') return outcome.error
  const code = outcome.errorFrame?.code ?? (outcome.reason !== '' ? outcome.reason : `CLOSE_${outcome.code}`)
  const to = outcome.url === undefined ? '' : ` to ${outcome.url}`
  const why = [outcome.reason, causeText(outcome.cause)].filter((part) => part !== '').join(': ')
  const message = `the connection${to} closed with ${outcome.code}${why !== '' ? ` (${why})` : ''}`
  const options = { status: outcome.code, cause: outcome.cause ?? { code: outcome.code, reason: outcome.reason } }
  if (action === 'stop') return new AuthenticationError(code, message, options)
  return new ConnectionError(code, message, options)
}
