/**
 * One load generator of the avalanche benchmark, run as a child of
 * bench/avalanche.ts: `count` real RealtimeClients from the built SDK
 * (dist/client), each with its own user JWT, `ws` as its WebSocket and Node's
 * fetch, all through the balancer. The SDK does everything a client does by SPEC
 * §6 (tickets, backoff, resume); this file only watches: when each client is up
 * (session established and every channel subscribed), when it goes down, what the
 * gateway answered, and which messages of the shared channel it got.
 */
import { SignJWT } from 'jose'
import WebSocket from 'ws'
import type * as Sdk from '../../packages/client/src/index.js'
import {
  now,
  type ClientRecord, type FromGenerator, type LedgerSummary, type PhaseTallies, type PublishedEntry, type Tally, type ToGenerator
} from './protocol.js'

if (process.send === undefined) throw new Error('run by bench/avalanche.ts (needs an IPC channel)')
const send = (message: FromGenerator): void => { process.send?.(message) }

const PROGRESS_INTERVAL_MS = 250
const CATCH_UP_TIMEOUT_MS = 15_000

let phase = 'setup'
const tallies: Record<string, PhaseTallies> = {}
let measuring = true

function tallyOf (): PhaseTallies {
  let tally = tallies[phase]
  if (tally === undefined) {
    tally = { ticket: {}, upgrade: {}, close: {}, error: {}, sockets: 0 }
    tallies[phase] = tally
  }
  return tally
}

function bump (tally: Tally, key: string | number): void {
  if (!measuring) return
  tally[key] = (tally[key] ?? 0) + 1
}

function offsetParts (offset: string): { epoch: string, seq: number } | undefined {
  const separator = offset.lastIndexOf(':')
  const seq = Number(offset.slice(separator + 1))
  return separator > 0 && Number.isSafeInteger(seq) ? { epoch: offset.slice(0, separator), seq } : undefined
}

/** One client and what it saw. */
class Probe {
  readonly index: number
  readonly channels: readonly string[]
  client: Sdk.RealtimeClient | undefined
  up = false
  everUp = false
  pending = new Set<string>()
  readonly ups: number[] = []
  readonly downs: number[] = []
  ticket429 = 0
  ticket503 = 0
  upgrade503 = 0
  ticketRequests = 0
  /** data.seq of every shared-channel message, in arrival order. */
  seqs = new Uint32Array(256)
  received = 0
  firstOffsetSeq: number | undefined
  lastOffsetSeq = -1
  readonly epochs = new Set<string>()
  /** recovered:false: offsets in (from, to] were skipped by the gateway, on purpose. */
  readonly gaps: Array<readonly [number, number]> = []

  constructor (index: number, channels: readonly string[]) {
    this.index = index
    this.channels = channels
  }

  record (seq: number): void {
    if (this.received === this.seqs.length) {
      const grown = new Uint32Array(this.seqs.length * 2)
      grown.set(this.seqs)
      this.seqs = grown
    }
    this.seqs[this.received++] = seq
  }
}

const probes: Probe[] = []
let sharedChannel = ''

function watch (probe: Probe, client: Sdk.RealtimeClient): void {
  client.on('session', () => {
    probe.pending = new Set(probe.channels)
  })
  client.on('status', (status) => {
    if (status !== 'open' && probe.up) {
      probe.up = false
      probe.downs.push(now())
    }
  })
  client.on('subscribed', (info) => {
    if (info.channel === sharedChannel) {
      const position = offsetParts(info.offset)
      if (position !== undefined) {
        probe.epochs.add(position.epoch)
        if (probe.firstOffsetSeq === undefined) {
          probe.firstOffsetSeq = position.seq
          probe.lastOffsetSeq = position.seq
        } else if (!info.recovered) {
          probe.gaps.push([probe.lastOffsetSeq, position.seq])
          probe.lastOffsetSeq = Math.max(probe.lastOffsetSeq, position.seq)
        }
      }
    }
    if (probe.pending.delete(info.channel) && probe.pending.size === 0 && client.status === 'open' && !probe.up) {
      probe.up = true
      probe.everUp = true
      probe.ups.push(now())
    }
  })
  client.on('message', (message) => {
    if (message.channel !== sharedChannel) return
    const data = message.data as { seq?: unknown } | null
    if (typeof data?.seq === 'number') probe.record(data.seq)
    const position = offsetParts(message.offset)
    if (position !== undefined) {
      probe.epochs.add(position.epoch)
      probe.lastOffsetSeq = position.seq
    }
  })
  client.on('error', (error) => { bump(tallyOf().error, error.code) })
}

/** `timeout` (the SDK's AbortController, 10 s) or `network:<code>` for a fetch that threw. */
function failureOf (err: unknown): string {
  if (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) return 'timeout'
  const cause = (err as { cause?: { code?: unknown } }).cause
  return `network:${typeof cause?.code === 'string' ? cause.code : 'other'}`
}

/** `fetch` that tallies the ticket answers the SDK gets (and lets everything through unchanged). */
function countingFetch (probe: Probe): typeof fetch {
  return async (input, init) => {
    if (typeof input !== 'string' || !input.endsWith('/ws-ticket')) return await fetch(input, init)
    if (measuring) probe.ticketRequests += 1
    let response: Response
    try {
      response = await fetch(input, init)
    } catch (err) {
      bump(tallyOf().ticket, failureOf(err))
      throw err
    }
    bump(tallyOf().ticket, response.status)
    if (measuring && response.status === 429) probe.ticket429 += 1
    if (measuring && response.status === 503) probe.ticket503 += 1
    return response
  }
}

/** The `ws` class, tallying sockets, refused upgrades and close codes. */
function countingWebSocket (probe: Probe): Sdk.WebSocketConstructor {
  return class CountingWebSocket extends WebSocket {
    constructor (url: string) {
      super(url)
      if (measuring) tallyOf().sockets += 1
      this.on('error', (err: Error) => {
        const refused = /Unexpected server response: (\d+)/.exec(err.message)
        if (refused === null) return
        bump(tallyOf().upgrade, refused[1]!)
        if (measuring && refused[1] === '503') probe.upgrade503 += 1
      })
      this.on('close', (code: number) => { bump(tallyOf().close, code) })
    }
  }
}

async function arm (message: Extract<ToGenerator, { type: 'arm' }>): Promise<void> {
  const sdk = await import(message.sdkUrl) as typeof Sdk
  sharedChannel = message.sharedChannel
  const key = new TextEncoder().encode(message.secret)
  for (let i = message.first; i < message.first + message.count; i++) {
    const sub = `av-user-${i}`
    const token = await new SignJWT({ sessionId: `av-session-${i}`, channels: [message.sharedChannel] })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(sub)
      .setIssuedAt()
      .setExpirationTime('3h')
      .sign(key)
    const probe = new Probe(i, [`user:${sub}`, message.sharedChannel])
    const client = new sdk.RealtimeClient({
      url: message.url,
      getToken: async () => token,
      WebSocket: countingWebSocket(probe),
      fetch: countingFetch(probe),
      page: null
    })
    probe.client = client
    watch(probe, client)
    probes.push(probe)
  }
  send({ type: 'armed' })
}

function go (): void {
  for (const probe of probes) {
    const client = probe.client!
    for (const channel of probe.channels) client.subscribe(channel).catch(() => { /* refused or closed: tallied as an error event */ })
    // Rejects on each failed attempt while the client keeps healing: the events tell the story.
    client.connect().catch(() => {})
  }
  setInterval(() => {
    let up = 0
    let down = 0
    let neverUp = 0
    let downEvents = 0
    for (const probe of probes) {
      if (probe.up) up += 1
      else if (probe.everUp) down += 1
      else neverUp += 1
      downEvents += probe.downs.length
    }
    send({ type: 'progress', up, down, neverUp, downEvents })
  }, PROGRESS_INTERVAL_MS).unref()
}

function ledgerOf (probe: Probe, epoch: string, offsetBySeq: Float64Array): LedgerSummary | undefined {
  const first = probe.firstOffsetSeq
  if (first === undefined) return undefined
  const counts = new Uint16Array(offsetBySeq.length)
  let unconfirmed = 0
  let outOfOrder = 0
  let highest = -1
  for (let i = 0; i < probe.received; i++) {
    const seq = probe.seqs[i]!
    const offset = seq < offsetBySeq.length ? offsetBySeq[seq]! : -1
    if (offset < 0) { unconfirmed += 1; continue }
    if (counts[seq]! < 65_535) counts[seq]! += 1
    if (offset < highest) outOfOrder += 1
    highest = Math.max(highest, offset)
  }
  const inGap = (offset: number): boolean => probe.gaps.some(([from, to]) => offset > from && offset <= to)
  let expected = 0
  let lost = 0
  let skipped = 0
  let duplicated = 0
  for (let seq = 0; seq < offsetBySeq.length; seq++) {
    const count = counts[seq]!
    if (count > 1) duplicated += count - 1
    const offset = offsetBySeq[seq]!
    if (offset < 0 || offset <= first) continue
    if (inGap(offset)) {
      if (count === 0) skipped += 1
      continue
    }
    expected += 1
    if (count === 0) lost += 1
  }
  return {
    expected,
    received: probe.received,
    lost,
    duplicated,
    outOfOrder,
    skippedRecoveredFalse: skipped,
    recoveredFalse: probe.gaps.length,
    unconfirmed,
    foreignEpoch: [...probe.epochs].some((seen) => seen !== epoch)
  }
}

async function finish (message: Extract<ToGenerator, { type: 'finish' }>): Promise<void> {
  measuring = false
  // Bounded: every client that is up has seen the last published message.
  const deadline = Date.now() + CATCH_UP_TIMEOUT_MS
  const behind = (): boolean => probes.some((probe) => probe.up && probe.lastOffsetSeq < message.lastOffsetSeq)
  while (behind() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100))
  const caughtUp = !behind()

  const maxSeq = message.published.reduce((max, entry) => Math.max(max, entry.seq), -1)
  const offsetBySeq = new Float64Array(maxSeq + 1).fill(-1)
  for (const entry of message.published as readonly PublishedEntry[]) offsetBySeq[entry.seq] = entry.offsetSeq
  const clients: ClientRecord[] = probes.map((probe) => {
    const ledger = ledgerOf(probe, message.epoch, offsetBySeq)
    return {
      index: probe.index,
      ups: probe.ups,
      downs: probe.downs,
      ticket429: probe.ticket429,
      ticket503: probe.ticket503,
      upgrade503: probe.upgrade503,
      ticketRequests: probe.ticketRequests,
      ...(ledger === undefined ? {} : { ledger }),
      finalStatus: probe.client?.status ?? 'none',
      // Open, but a channel the app subscribed to is not (or no longer) subscribed.
      missingChannels: probe.client?.status === 'open' ? [...probe.pending] : []
    }
  })
  send({ type: 'result', clients, tallies, caughtUp })
}

function close (): void {
  for (const probe of probes) probe.client?.close()
  // Let the close frames go out, then leave.
  setTimeout(() => { process.exit(0) }, 500).unref()
}

process.on('message', (message: ToGenerator) => {
  switch (message.type) {
    case 'arm':
      arm(message).catch((err: unknown) => { process.stderr.write(`generator: ${String(err)}\n`); process.exit(1) })
      return
    case 'go':
      phase = 'ramp'
      go()
      return
    case 'phase':
      phase = message.name
      return
    case 'finish':
      finish(message).catch((err: unknown) => { process.stderr.write(`generator: ${String(err)}\n`); process.exit(1) })
      return
    case 'close':
      close()
  }
})
process.on('disconnect', () => { process.exit(0) })
