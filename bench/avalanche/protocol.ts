/**
 * IPC between the avalanche orchestrator (bench/avalanche.ts) and its children:
 * the load generators (generator.ts) and the balancer (balancer.ts).
 *
 * Times crossing processes are epoch milliseconds read as
 * `performance.timeOrigin + performance.now()` (sub-millisecond, same clock).
 */

export const now = (): number => performance.timeOrigin + performance.now()

/** A message the publisher got a 200 for: its `data.seq` and the channel offset's seq. */
export interface PublishedEntry {
  readonly seq: number
  readonly offsetSeq: number
}

// --- generator --------------------------------------------------------------

export type ToGenerator =
  /** Mint the tokens and build the clients (not connected yet); answer `armed`. */
  | { readonly type: 'arm', readonly url: string, readonly first: number, readonly count: number, readonly secret: string, readonly sharedChannel: string, readonly sdkUrl: string }
  /** Connect every client now. */
  | { readonly type: 'go' }
  /** Tallies from now on go to this phase. */
  | { readonly type: 'phase', readonly name: string }
  /** Stop measuring: wait (bounded) until every open client has seen `lastOffsetSeq`, then answer `result`. */
  | { readonly type: 'finish', readonly epoch: string, readonly published: readonly PublishedEntry[], readonly lastOffsetSeq: number }
  /** Close every client and exit. */
  | { readonly type: 'close' }

/** Counts by key (HTTP status, close code, error code). */
export type Tally = Record<string, number>

export interface PhaseTallies {
  /** POST /ws-ticket answers as the SDK's fetch saw them; `timeout` / `network:<code>` for a fetch that threw. */
  readonly ticket: Tally
  /** HTTP status of refused upgrades (ws' "Unexpected server response"). */
  readonly upgrade: Tally
  /** Close codes of the clients' sockets (ws' close event; 1006 = no close frame). */
  readonly close: Tally
  /** Codes of the SDK's `error` events. */
  readonly error: Tally
  /** WebSocket objects the SDK created. */
  sockets: number
}

export interface LedgerSummary {
  /** Published messages the client should have got (after its first subscribe, outside recovered:false gaps). */
  readonly expected: number
  readonly received: number
  readonly lost: number
  readonly duplicated: number
  readonly outOfOrder: number
  /** Expected-looking messages inside a recovered:false gap: legitimately skipped, not lost. */
  readonly skippedRecoveredFalse: number
  readonly recoveredFalse: number
  /** Received, but the publisher never got a 200 for it (a retry's first attempt that landed). */
  readonly unconfirmed: number
  /** An offset of another epoch than the publisher's was seen. */
  readonly foreignEpoch: boolean
}

export interface ClientRecord {
  readonly index: number
  /** Times the client became fully up (session established and every channel subscribed). */
  readonly ups: readonly number[]
  /** Times the client's status left `open` after it had been up. */
  readonly downs: readonly number[]
  readonly ticket429: number
  readonly ticket503: number
  readonly upgrade503: number
  readonly ticketRequests: number
  /** Undefined: the shared channel was never subscribed. */
  readonly ledger?: LedgerSummary
  readonly finalStatus: string
  /** At the end, open but with these channels not subscribed (refused, or given up by the SDK). */
  readonly missingChannels: readonly string[]
}

export type FromGenerator =
  | { readonly type: 'armed' }
  | { readonly type: 'progress', readonly up: number, readonly down: number, readonly neverUp: number, readonly downEvents: number }
  | { readonly type: 'result', readonly clients: readonly ClientRecord[], readonly tallies: Record<string, PhaseTallies>, readonly caughtUp: boolean }

// --- balancer ---------------------------------------------------------------

export interface Backend {
  readonly name: string
  readonly port: number
  /** False: only used when no backend is ready (an ingress drops unready endpoints). */
  readonly ready: boolean
}

export type ToBalancer =
  | { readonly type: 'backends', readonly backends: readonly Backend[] }
  | { readonly type: 'stats', readonly id: number }

export interface BackendStats {
  readonly name: string
  readonly port: number
  readonly active: number
  readonly accepted: number
  /** Connects that failed (refused, reset) and were passed to the next backend. */
  readonly failedConnects: number
}

export type FromBalancer =
  | { readonly type: 'listening', readonly port: number }
  | { readonly type: 'stats', readonly id: number, readonly backends: readonly BackendStats[], readonly refused: number }
