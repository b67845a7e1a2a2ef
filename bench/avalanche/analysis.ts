/** The avalanche benchmark's figures, computed from what the generators and pollers recorded. */
import type { ReadyzPoll } from './readiness.js'
import type { ClientRecord, PhaseTallies, Tally } from './protocol.js'

/** Nearest-rank percentile of ascending `sorted`; Infinity entries stand for "never". */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export interface Distribution {
  readonly count: number
  readonly t50Ms: number
  readonly t95Ms: number
  readonly t99Ms: number
  readonly t100Ms: number
  /** Entries that never happened within the bound (Infinity in the input). */
  readonly never: number
}

export function distribution (values: readonly number[]): Distribution {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    count: sorted.length,
    t50Ms: percentile(sorted, 50),
    t95Ms: percentile(sorted, 95),
    t99Ms: percentile(sorted, 99),
    t100Ms: percentile(sorted, 100),
    never: sorted.filter((value) => value === Number.POSITIVE_INFINITY).length
  }
}

/** Ramp: from `goAt` to each client's first "up"; Infinity past `boundAt`. */
export function rampFigures (clients: readonly ClientRecord[], goAt: number, boundAt: number): Distribution {
  return distribution(clients.map((client) => {
    const up = client.ups[0]
    return up === undefined || up > boundAt ? Number.POSITIVE_INFINITY : up - goAt
  }))
}

export interface RecoveryFigures {
  /** Clients whose session went down between the signal and the end of the phase. */
  readonly affected: number
  /** From the signal to each affected client's next "up" (every channel subscribed again). */
  readonly reestablished: Distribution
  /** Further drops of affected clients within the phase (e.g. a reconnect refused by a draining instance). */
  readonly extraDisconnects: number
  /** Clients that went down more than once within the phase. */
  readonly churnedClients: number
}

/** A kill phase: `signalAt` to `endAt`; a client back later than `boundMs` after the signal counts as never. */
export function recoveryFigures (clients: readonly ClientRecord[], signalAt: number, endAt: number, boundMs: number): RecoveryFigures {
  const times: number[] = []
  let extraDisconnects = 0
  let churnedClients = 0
  for (const client of clients) {
    const downs = client.downs.filter((at) => at >= signalAt && at <= endAt)
    const firstDown = downs[0]
    if (firstDown === undefined) continue
    const back = client.ups.find((at) => at >= firstDown)
    times.push(back === undefined || back - signalAt > boundMs ? Number.POSITIVE_INFINITY : back - signalAt)
    extraDisconnects += downs.length - 1
    if (downs.length > 1) churnedClients += 1
  }
  return { affected: times.length, reestablished: distribution(times), extraDisconnects, churnedClients }
}

export interface ReadyzFigures {
  readonly polls: number
  readonly answered: number
  readonly ok: number
  readonly notReady: number
  readonly refused: number
  readonly timeouts: number
  readonly errors: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** /readyz polls sent in [from, to), optionally of one instance. A timeout counts at the timeout in the latencies. */
export function readyzFigures (polls: readonly ReadyzPoll[], from: number, to: number, instance?: string, timeoutMs = 1000): ReadyzFigures {
  const window = polls.filter((poll) => poll.at >= from && poll.at < to && (instance === undefined || poll.instance === instance))
  const latencies = window.flatMap((poll) => poll.ms !== undefined ? [poll.ms] : poll.outcome === 'timeout' ? [timeoutMs] : []).sort((a, b) => a - b)
  const count = (test: (poll: ReadyzPoll) => boolean): number => window.filter(test).length
  return {
    polls: window.length,
    answered: count((poll) => typeof poll.outcome === 'number'),
    ok: count((poll) => poll.outcome === 200),
    notReady: count((poll) => typeof poll.outcome === 'number' && poll.outcome !== 200),
    refused: count((poll) => poll.outcome === 'refused'),
    timeouts: count((poll) => poll.outcome === 'timeout'),
    errors: count((poll) => poll.outcome === 'error'),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies[latencies.length - 1] ?? Number.NaN
  }
}

export function addTally (into: Tally, from: Tally): Tally {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value
  return into
}

export function emptyTallies (): PhaseTallies {
  return { ticket: {}, upgrade: {}, close: {}, error: {}, sockets: 0 }
}

export function mergeTallies (into: PhaseTallies, from: PhaseTallies): PhaseTallies {
  addTally(into.ticket, from.ticket)
  addTally(into.upgrade, from.upgrade)
  addTally(into.close, from.close)
  addTally(into.error, from.error)
  into.sockets += from.sockets
  return into
}

export interface LedgerTotals {
  readonly clientsWithLedger: number
  readonly clientsWithoutLedger: number
  readonly expected: number
  readonly received: number
  readonly lost: number
  readonly clientsWithLoss: number
  readonly duplicated: number
  readonly clientsWithDuplicates: number
  readonly outOfOrder: number
  readonly clientsOutOfOrder: number
  readonly skippedRecoveredFalse: number
  readonly clientsRecoveredFalse: number
  readonly unconfirmed: number
  readonly clientsForeignEpoch: number
}

export function ledgerTotals (clients: readonly ClientRecord[]): LedgerTotals {
  const totals = {
    clientsWithLedger: 0, clientsWithoutLedger: 0, expected: 0, received: 0, lost: 0, clientsWithLoss: 0,
    duplicated: 0, clientsWithDuplicates: 0, outOfOrder: 0, clientsOutOfOrder: 0,
    skippedRecoveredFalse: 0, clientsRecoveredFalse: 0, unconfirmed: 0, clientsForeignEpoch: 0
  }
  for (const client of clients) {
    const ledger = client.ledger
    if (ledger === undefined) { totals.clientsWithoutLedger += 1; continue }
    totals.clientsWithLedger += 1
    totals.expected += ledger.expected
    totals.received += ledger.received
    totals.lost += ledger.lost
    totals.duplicated += ledger.duplicated
    totals.outOfOrder += ledger.outOfOrder
    totals.skippedRecoveredFalse += ledger.skippedRecoveredFalse
    totals.unconfirmed += ledger.unconfirmed
    if (ledger.lost > 0) totals.clientsWithLoss += 1
    if (ledger.duplicated > 0) totals.clientsWithDuplicates += 1
    if (ledger.outOfOrder > 0) totals.clientsOutOfOrder += 1
    if (ledger.recoveredFalse > 0) totals.clientsRecoveredFalse += 1
    if (ledger.foreignEpoch) totals.clientsForeignEpoch += 1
  }
  return totals
}

/** Milliseconds as seconds for a table: `-` for NaN, `never` for Infinity. */
export function seconds (ms: number, digits = 2): string {
  if (Number.isNaN(ms)) return '-'
  if (ms === Number.POSITIVE_INFINITY) return 'never'
  return (ms / 1000).toFixed(digits)
}

/** `k=v` pairs of a tally, largest first; `-` when empty. */
export function tallyText (tally: Tally): string {
  const entries = Object.entries(tally).sort((a, b) => b[1] - a[1])
  return entries.length === 0 ? '-' : entries.map(([key, value]) => `${key}×${value}`).join(' ')
}
