/**
 * Every recovery decision of SPEC §5, and nothing else: whether a history still holds
 * what follows a `since`, what a read answers a resume (one, or a batch of one channel),
 * how a live message relates to where a stream stands, and the merge of a replay with
 * the live messages held meanwhile. No I/O and no clock, so each rule is tested on its
 * own (test/server/channels/recovery.test.ts); the relay, the long-poll and the engines do the
 * reading, holding and sending.
 */
import type { ChannelMessage, HistoryRead } from '../engine/engine.js'
import type { ChannelPosition } from '../../protocol/offsets.js'

/**
 * Whether a history whose head is `head` and whose oldest retained message is
 * `firstSeq` (head.seq + 1 when none is retained) still holds every message after
 * `since`. The engines answer `recovered` with it; engine/lua/read-history.lua is the
 * same rule in Lua, because Redis runs it next to the data.
 */
export function historyHolds (since: ChannelPosition, head: ChannelPosition, firstSeq: number): boolean {
  if (since.epoch !== head.epoch) return false
  if (since.seq === head.seq) return true
  // Ahead of the head (SPEC §5): not an offset of this history, so the client restarts
  // from the head rather than skip the next message as already seen.
  if (since.seq > head.seq) return false
  return since.seq + 1 >= firstSeq
}

/**
 * What a read made with `since` itself answers it (GET /v1/poll): a since the engine
 * could not recover (another epoch, trimmed away, ahead of the head) restarts from the
 * head with recovered:false; otherwise every message of the read follows `since`.
 */
export function resumeFromRead (since: ChannelPosition | undefined, read: HistoryRead): Resumption {
  const head: ChannelPosition = { epoch: read.epoch, seq: read.seq }
  if (since === undefined) return { offset: head, recovered: true, from: read.messages.length }
  if (!read.recovered) return { offset: head, recovered: false, from: read.messages.length }
  return { offset: since, recovered: true, from: 0 }
}

/**
 * How a message relates to the position a stream has reached: the one after it, one
 * already delivered, one after a hole (pub/sub lost some), or one of an epoch the
 * stream did not know (the history it came from is gone).
 */
export type Arrival = 'next' | 'duplicate' | 'gap' | 'new-epoch'

/** `position` undefined: nothing delivered yet, so whatever comes first starts the stream. */
export function classify (position: ChannelPosition | undefined, message: ChannelPosition): Arrival {
  if (position === undefined) return 'next'
  if (message.epoch !== position.epoch) return 'new-epoch'
  if (message.seq <= position.seq) return 'duplicate'
  return message.seq === position.seq + 1 ? 'next' : 'gap'
}

/** A stream's position, moved in place: fan-out advances one per subscriber per message, without allocating. */
export interface StreamPosition {
  epoch: string
  seq: number
}

/** Classifies `message` and moves `position` to it, unless it was delivered already. */
export function advance (position: StreamPosition, message: ChannelPosition): Arrival {
  const arrival = classify(position, message)
  if (arrival !== 'duplicate') {
    position.epoch = message.epoch
    position.seq = message.seq
  }
  return arrival
}

/** One message of a merged replay, as it reaches the subscriber. */
export interface MergeStep {
  readonly message: ChannelMessage
  /** Its index in the replay; undefined for a live message held meanwhile. */
  readonly replayIndex: number | undefined
  /**
   * `duplicate`: already delivered, not to be written; `new-epoch`: the subscriber is
   * told (`subscribed` recovered:false at the message's predecessor) before it.
   */
  readonly arrival: Arrival
}

/**
 * A replay (`replay` from index `from`) followed by the live messages `held` while it
 * was read, as one stream without gap or duplicate at the seam: a live message the
 * replay already holds is a duplicate, one from a new epoch restarts the stream.
 * `held` is the relay's own buffer and may grow between steps; the merge is `done`
 * once both are consumed, and the subscriber goes live in that same step. Each step
 * advances `position` (the subscription's own), so live delivery continues from it.
 */
export class ReplayMerge {
  readonly #position: StreamPosition
  readonly #replay: readonly ChannelMessage[]
  readonly #held: readonly ChannelMessage[]
  #next: number
  #heldNext = 0

  constructor (position: StreamPosition, replay: readonly ChannelMessage[], from: number, held: readonly ChannelMessage[]) {
    this.#position = position
    this.#replay = replay
    this.#next = from
    this.#held = held
  }

  get done (): boolean {
    return this.#next >= this.#replay.length && this.#heldNext >= this.#held.length
  }

  /** The next step, or undefined when everything (held so far) is consumed. */
  next (): MergeStep | undefined {
    if (this.#next < this.#replay.length) {
      const replayIndex = this.#next
      const message = this.#replay[replayIndex]
      this.#next += 1
      if (message !== undefined) return { message, replayIndex, arrival: advance(this.#position, message) }
    }
    const message = this.#held[this.#heldNext]
    if (message === undefined) return undefined
    this.#heldNext += 1
    return { message, replayIndex: undefined, arrival: advance(this.#position, message) }
  }
}

/** One history read as the relay issued it: the `since` it was made with, and its answer. */
export interface BatchRead {
  /** The `since` passed to `readHistory` (undefined: a position read). */
  readonly base: ChannelPosition | undefined
  readonly read: HistoryRead
  /**
   * The highest seq of `read.epoch` known to predate the retained history (this read's
   * `base` if it was not recovered, or what an earlier read proved). Trimming only
   * moves forward within an epoch, so every `since` at or below it is lost for good.
   */
  readonly lostUpTo: number | undefined
}

/** One resume waiting for a read. */
export interface ResumeRequest {
  readonly since: ChannelPosition | undefined
  /**
   * The last position this instance had delivered on the channel when the resume
   * registered (undefined: nothing yet). Every live message after it reaches the
   * resume's held `pending` list, so a read whose head is at or after it leaves no seam.
   */
  readonly seen: ChannelPosition | undefined
  /**
   * True when the read was issued after the resume registered, so its head is at least
   * every offset the client can have seen (a publish commits before it is delivered
   * anywhere). Only such a read may call a `since` ahead of the head, or from another
   * epoch, lost: an older read may simply not know the newer messages yet.
   */
  readonly fresh: boolean
}

/** What one read answers a resume: its `subscribed` frame and the replay that follows. */
export interface Resumption {
  /** `subscribed.offset`: where the messages that follow continue from. */
  readonly offset: ChannelPosition
  readonly recovered: boolean
  /** The replay: `read.messages` from this index on (`messages.length`: nothing). */
  readonly from: number
}

/**
 * What `batch` answers `request`, or undefined when this read cannot decide it
 * (the next read will). Never a gap or a duplicate: a replay always starts right
 * after `since`, and live messages after the read's head are the held ones.
 */
export function resumeFrom (batch: BatchRead, request: ResumeRequest): Resumption | undefined {
  const { read } = batch
  const head: ChannelPosition = { epoch: read.epoch, seq: read.seq }
  const nothing = read.messages.length
  const { since, seen, fresh } = request
  // A read issued before the resume registered may be older than what this instance
  // had delivered by then (what `pending` starts after): it cannot serve it. A fresh
  // read is never older (when `seen` is from another epoch, that epoch was lost since).
  if (!fresh && seen !== undefined && (seen.epoch !== head.epoch || seen.seq > head.seq)) return undefined
  if (since === undefined) return { offset: head, recovered: true, from: nothing }
  if (since.epoch !== head.epoch) return fresh ? { offset: head, recovered: false, from: nothing } : undefined
  if (batch.lostUpTo !== undefined && since.seq <= batch.lostUpTo) return { offset: head, recovered: false, from: nothing }
  if (since.seq === head.seq) return { offset: since, recovered: true, from: nothing }
  // SPEC §5: a since ahead of the head is recovered:false from the head, so the next
  // live message is delivered rather than skipped as already seen.
  if (since.seq > head.seq) return fresh ? { offset: head, recovered: false, from: nothing } : undefined
  const { base } = batch
  if (base === undefined || base.epoch !== head.epoch || base.seq > since.seq || !read.recovered) return undefined
  // The read's messages are base+1 .. head without gaps (seqs are gapless, trimming
  // only drops the oldest), so the replay of `since` is a suffix of them.
  const first = read.messages[0]?.seq ?? head.seq + 1
  return { offset: since, recovered: true, from: Math.max(0, since.seq + 1 - first) }
}

/** What the relay remembers of a channel's history between reads (per instance). */
export interface HistoryHint {
  readonly epoch: string
  /** See BatchRead.lostUpTo. */
  readonly lostUpTo: number | undefined
  /** The last read's base was too old: probe the middle of the remaining sinces next. */
  readonly bisect: boolean
}

/**
 * The `since` one read for `sinces` (a batch of resumes of one channel) should use.
 * Usually the oldest of the epoch most of them share, so one read serves them all.
 * After a read found its base too old, the middle of the remaining ones instead: a
 * read then either serves every `since` from its base on or proves every one up to
 * it lost, so k distinct stale offsets cost O(log k) reads, not k.
 */
export function chooseBase (sinces: ReadonlyArray<ChannelPosition | undefined>, hint: HistoryHint | undefined): ChannelPosition | undefined {
  const counts = new Map<string, number>()
  for (const since of sinces) if (since !== undefined) counts.set(since.epoch, (counts.get(since.epoch) ?? 0) + 1)
  if (counts.size === 0) return undefined
  let epoch = ''
  if (hint !== undefined && counts.has(hint.epoch)) epoch = hint.epoch
  else {
    let best = 0
    for (const [each, count] of counts) if (count > best) { epoch = each; best = count }
  }
  const lostUpTo = hint?.epoch === epoch ? hint.lostUpTo : undefined
  const seqs = [...new Set(sinces.flatMap((since) =>
    since !== undefined && since.epoch === epoch && (lostUpTo === undefined || since.seq > lostUpTo) ? [since.seq] : []))]
    .sort((x, y) => x - y)
  const bisect = hint?.epoch === epoch && hint.bisect
  const seq = seqs[bisect ? Math.floor((seqs.length - 1) / 2) : 0]
  // None left (all known lost): a position read answers them.
  return seq === undefined ? undefined : { epoch, seq }
}

/**
 * One read's outcome for the resumes it may serve: `lostUpTo` combines what `hint`
 * already knew with this read, when its own base turned out older than the history.
 */
export function batchRead (base: ChannelPosition | undefined, read: HistoryRead, hint: HistoryHint | undefined): BatchRead {
  const known = hint?.epoch === read.epoch ? hint.lostUpTo : undefined
  const lostUpTo = tooOld(base, read) ? Math.max(base?.seq ?? 0, known ?? 0) : known
  return { base, read, lostUpTo }
}

/** The hint after `batch`: what it proved lost, and how to choose the next base. */
export function nextHint (batch: BatchRead): HistoryHint {
  return { epoch: batch.read.epoch, lostUpTo: batch.lostUpTo, bisect: tooOld(batch.base, batch.read) }
}

/** The read's own base predates the retained history (not: ahead of it, or another epoch). */
function tooOld (base: ChannelPosition | undefined, read: HistoryRead): boolean {
  return base !== undefined && base.epoch === read.epoch && !read.recovered && base.seq < read.seq
}
