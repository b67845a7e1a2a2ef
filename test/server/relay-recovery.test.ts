import t from 'tap'
import type { ChannelMessage, HistoryRead } from '../../src/server/engine/engine.js'
import type { ChannelPosition } from '../../src/protocol/offsets.js'
import { batchRead, chooseBase, nextHint, resumeFrom, type BatchRead, type HistoryHint } from '../../src/server/channels/recovery.js'
import { ReplayScheduler, type ReplayJob } from '../../src/server/channels/replay-scheduler.js'

/**
 * The pure rules of a coalesced resume (src/server/channels/recovery.ts) and the
 * replay budget (replay-scheduler.ts), without a gateway: SPEC §5's no gap, no
 * duplicate, recovered:false, for every `since` one read may have to answer.
 */

const message = (seq: number, epoch = 'E'): ChannelMessage => ({ channel: 'c', epoch, seq, data: String(seq) })

/** What an engine answers for a channel at `head` retaining seqs `first..head` (the contract's rules). */
function engineRead (since: ChannelPosition | undefined, head: number, first: number, epoch = 'E'): HistoryRead {
  const position = { epoch, seq: head }
  if (since === undefined) return { ...position, recovered: true, messages: [] }
  if (since.epoch !== epoch || since.seq > head || since.seq + 1 < first) return { ...position, recovered: false, messages: [] }
  const messages = []
  for (let seq = since.seq + 1; seq <= head; seq++) messages.push(message(seq, epoch))
  return { ...position, recovered: true, messages }
}

function batch (base: ChannelPosition | undefined, head: number, first = 1, hint?: HistoryHint): BatchRead {
  return batchRead(base, engineRead(base, head, first), hint)
}

await t.test('resumeFrom: one read from the oldest since serves every later since with exactly its suffix', async (t) => {
  const read = batch({ epoch: 'E', seq: 10 }, 20)
  for (const since of [10, 11, 15, 19]) {
    const resumption = resumeFrom(read, { since: { epoch: 'E', seq: since }, seen: undefined, fresh: true })
    t.strictSame(resumption, { offset: { epoch: 'E', seq: since }, recovered: true, from: since - 10 }, `since ${since}`)
    t.strictSame(read.read.messages.slice(resumption?.from).map((each) => each.seq)[0], since + 1, `the replay of ${since} starts at ${since + 1}`)
  }
  t.strictSame(resumeFrom(read, { since: { epoch: 'E', seq: 20 }, seen: undefined, fresh: true }),
    { offset: { epoch: 'E', seq: 20 }, recovered: true, from: 10 }, 'at the head: recovered, nothing to replay')
  t.strictSame(resumeFrom(read, { since: undefined, seen: undefined, fresh: true }),
    { offset: { epoch: 'E', seq: 20 }, recovered: true, from: 10 }, 'no since: the head, recovered')
  t.equal(resumeFrom(read, { since: { epoch: 'E', seq: 9 }, seen: undefined, fresh: true }), undefined,
    'older than the base: this read cannot serve it')
})

await t.test('resumeFrom: ahead of the head or another epoch is recovered:false at the head, but only from a fresh read', async (t) => {
  const read = batch({ epoch: 'E', seq: 10 }, 20)
  const lost = { offset: { epoch: 'E', seq: 20 }, recovered: false, from: 10 }
  t.strictSame(resumeFrom(read, { since: { epoch: 'E', seq: 21 }, seen: undefined, fresh: true }), lost, 'ahead')
  t.strictSame(resumeFrom(read, { since: { epoch: 'X', seq: 3 }, seen: undefined, fresh: true }), lost, 'another epoch')
  // A read issued before the resume registered may not know the messages the client saw.
  t.equal(resumeFrom(read, { since: { epoch: 'E', seq: 21 }, seen: undefined, fresh: false }), undefined, 'ahead of an older read')
  t.equal(resumeFrom(read, { since: { epoch: 'X', seq: 3 }, seen: undefined, fresh: false }), undefined, 'an epoch an older read may not know')
})

await t.test('resumeFrom: a read older than what this instance had delivered at registration serves nobody who joined late', async (t) => {
  const read = batch({ epoch: 'E', seq: 10 }, 20)
  t.equal(resumeFrom(read, { since: { epoch: 'E', seq: 12 }, seen: { epoch: 'E', seq: 21 }, fresh: false }), undefined, 'seen after the head')
  t.equal(resumeFrom(read, { since: undefined, seen: { epoch: 'F', seq: 1 }, fresh: false }), undefined, 'seen in another epoch')
  t.strictSame(resumeFrom(read, { since: { epoch: 'E', seq: 12 }, seen: { epoch: 'E', seq: 20 }, fresh: false }),
    { offset: { epoch: 'E', seq: 12 }, recovered: true, from: 2 }, 'seen at the head: every later message is held')
  t.strictSame(resumeFrom(read, { since: undefined, seen: { epoch: 'F', seq: 1 }, fresh: true }),
    { offset: { epoch: 'E', seq: 20 }, recovered: true, from: 10 }, 'a fresh read is never older than the registration')
})

await t.test('a base older than the history proves every since up to it lost', async (t) => {
  const read = batch({ epoch: 'E', seq: 3 }, 20, 10)
  t.equal(read.lostUpTo, 3)
  const lost = { offset: { epoch: 'E', seq: 20 }, recovered: false, from: 0 }
  t.strictSame(resumeFrom(read, { since: { epoch: 'E', seq: 3 }, seen: undefined, fresh: true }), lost)
  t.strictSame(resumeFrom(read, { since: { epoch: 'E', seq: 1 }, seen: undefined, fresh: false }), lost, 'trimming never comes back')
  t.equal(resumeFrom(read, { since: { epoch: 'E', seq: 12 }, seen: undefined, fresh: true }), undefined, 'a later since needs its own read')
  t.strictSame(nextHint(read), { epoch: 'E', lostUpTo: 3, bisect: true })
  const later = batch({ epoch: 'E', seq: 12 }, 20, 10, nextHint(read))
  t.equal(later.lostUpTo, 3, 'what an earlier read proved is kept')
  t.strictSame(nextHint(later), { epoch: 'E', lostUpTo: 3, bisect: false })
  t.strictSame(nextHint(batch({ epoch: 'E', seq: 30 }, 20)), { epoch: 'E', lostUpTo: undefined, bisect: false }, 'ahead is not too old')
})

await t.test('chooseBase: the oldest since of the epoch most share; the last read\'s epoch first; known-lost ones left out', async (t) => {
  const at = (epoch: string, seq: number): ChannelPosition => ({ epoch, seq })
  t.equal(chooseBase([], undefined), undefined)
  t.equal(chooseBase([undefined, undefined], undefined), undefined, 'plain subscribes: a position read')
  t.strictSame(chooseBase([at('E', 7), undefined, at('E', 4), at('X', 1), at('E', 9)], undefined), at('E', 4))
  t.strictSame(chooseBase([at('E', 7), at('X', 1), at('X', 2)], { epoch: 'E', lostUpTo: undefined, bisect: false }), at('E', 7))
  t.strictSame(chooseBase([at('E', 2), at('E', 5), at('E', 8)], { epoch: 'E', lostUpTo: 2, bisect: false }), at('E', 5))
  t.strictSame(chooseBase([at('E', 1), at('E', 3), at('E', 5), at('E', 7), at('E', 9)], { epoch: 'E', lostUpTo: 1, bisect: true }), at('E', 5),
    'after a too-old read: the middle of the rest')
  t.equal(chooseBase([at('E', 1), at('E', 2)], { epoch: 'E', lostUpTo: 2, bisect: true }), undefined, 'all known lost')
})

await t.test('a batch of 1000 distinct sinces, most of them trimmed away, is answered exactly in O(log n) reads', async (t) => {
  const head = 1000
  const first = 600
  let pending = Array.from({ length: 1000 }, (_, seq) => ({ since: { epoch: 'E', seq }, seen: undefined, fresh: true }))
  let hint: HistoryHint | undefined
  let reads = 0
  const wrong: number[] = []
  while (pending.length > 0 && reads < 100) {
    const base = chooseBase(pending.map((request) => request.since), hint)
    const read = batchRead(base, engineRead(base, head, first), hint)
    reads += 1
    hint = nextHint(read)
    pending = pending.filter((request) => {
      const resumption = resumeFrom(read, request)
      if (resumption === undefined) return true
      const replay = read.read.messages.slice(resumption.from).map((each) => each.seq)
      const recoverable = request.since.seq + 1 >= first
      const expected = recoverable ? Array.from({ length: head - request.since.seq }, (_, index) => request.since.seq + 1 + index) : []
      if (resumption.recovered !== recoverable || replay.join() !== expected.join()) wrong.push(request.since.seq)
      return false
    })
  }
  t.strictSame(wrong, [], 'each since: recovered with exactly its suffix, or recovered:false')
  t.equal(pending.length, 0, 'every since answered')
  t.ok(reads <= 2 * Math.ceil(Math.log2(1000)) + 2, `${reads} reads for 1000 distinct sinces`)
})

await t.test('ReplayScheduler: at most the budget per turn, yielding between turns; a lone small job runs at once', async (t) => {
  const scheduler = new ReplayScheduler(10)
  // Frames written per synchronous stretch (one stretch ends at the next microtask checkpoint).
  let turn = 0
  let counting = false
  const perTurn = new Map<number, number>()
  const job = (frames: number): ReplayJob & { done: boolean } => {
    let left = frames
    const self = {
      done: false,
      run: (budget: number): number => {
        const written = Math.min(budget, left)
        left -= written
        perTurn.set(turn, (perTurn.get(turn) ?? 0) + written)
        if (!counting) {
          counting = true
          queueMicrotask(() => { counting = false; turn += 1 })
        }
        self.done = left === 0
        return written
      }
    }
    return self
  }
  const small = job(3)
  scheduler.add(small)
  t.equal(small.done, true, 'written synchronously')
  const big = job(25)
  const after = job(4)
  scheduler.add(big)
  scheduler.add(after)
  t.equal(big.done, false)
  while (scheduler.size > 0) await new Promise((resolve) => setImmediate(resolve))
  t.equal(after.done, true)
  t.strictSame([...perTurn.values()], [10, 10, 10, 2], 'the budget per turn, the remainder in the last')
  t.equal([...perTurn.values()].reduce((sum, frames) => sum + frames, 0), 32, 'every frame written once')
})
