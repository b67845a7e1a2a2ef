import t from 'tap'
import type { ChannelMessage, HistoryRead } from '../../../src/server/engine/engine.js'
import type { ChannelPosition } from '../../../src/protocol/offsets.js'
import {
  ReplayMerge,
  advance,
  batchRead,
  chooseBase,
  classify,
  historyHolds,
  nextHint,
  resumeFrom,
  resumeFromRead,
  type BatchRead,
  type HistoryHint,
  type MergeStep
} from '../../../src/server/channels/recovery.js'

/**
 * The pure rules of recovery (src/server/channels/recovery.ts), without a gateway:
 * SPEC §5's no gap, no duplicate, recovered:false, for every `since` a read may have
 * to answer, every live message a stream may receive, and the seam between a replay
 * and the live messages held meanwhile.
 */

const message = (seq: number, epoch = 'E'): ChannelMessage => ({ channel: 'c', epoch, seq, data: String(seq) })

/** What an engine answers for a channel at `head` retaining seqs `first..head` (the contract's rules, written out). */
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

await t.test('historyHolds: the window check the engines answer `recovered` with', async (t) => {
  const head = { epoch: 'E', seq: 20 }
  t.equal(historyHolds({ epoch: 'E', seq: 20 }, head, 11), true, 'at the head')
  t.equal(historyHolds({ epoch: 'E', seq: 10 }, head, 11), true, 'right before the oldest retained: nothing missing')
  t.equal(historyHolds({ epoch: 'E', seq: 9 }, head, 11), false, 'seq 10 was trimmed away')
  t.equal(historyHolds({ epoch: 'E', seq: 21 }, head, 11), false, 'ahead of the head')
  t.equal(historyHolds({ epoch: 'X', seq: 20 }, head, 11), false, 'another epoch')
  t.equal(historyHolds({ epoch: 'E', seq: 20 }, head, 21), true, 'nothing retained, at the head')
  t.equal(historyHolds({ epoch: 'E', seq: 19 }, head, 21), false, 'nothing retained, behind the head')
  // The helper above is the engine contract written out: the two agree everywhere.
  const disagree: string[] = []
  for (const epoch of ['E', 'X']) {
    for (let since = 0; since <= 25; since++) {
      for (const first of [1, 5, 11, 21]) {
        const expected = engineRead({ epoch, seq: since }, 20, first).recovered
        if (historyHolds({ epoch, seq: since }, head, first) !== expected) disagree.push(`${epoch}:${since} first ${first}`)
      }
    }
  }
  t.strictSame(disagree, [])
})

await t.test('resumeFromRead: what one read made with the since answers it, the same as a fresh batch of one', async (t) => {
  t.strictSame(resumeFromRead(undefined, engineRead(undefined, 20, 11)), { offset: { epoch: 'E', seq: 20 }, recovered: true, from: 0 }, 'no since: the head')
  t.strictSame(resumeFromRead({ epoch: 'E', seq: 15 }, engineRead({ epoch: 'E', seq: 15 }, 20, 11)),
    { offset: { epoch: 'E', seq: 15 }, recovered: true, from: 0 }, 'in the window: every message of the read follows')
  const lost = { offset: { epoch: 'E', seq: 20 }, recovered: false, from: 0 }
  t.strictSame(resumeFromRead({ epoch: 'E', seq: 3 }, engineRead({ epoch: 'E', seq: 3 }, 20, 11)), lost, 'trimmed away')
  t.strictSame(resumeFromRead({ epoch: 'E', seq: 30 }, engineRead({ epoch: 'E', seq: 30 }, 20, 11)), lost, 'ahead of the head')
  t.strictSame(resumeFromRead({ epoch: 'X', seq: 3 }, engineRead({ epoch: 'X', seq: 3 }, 20, 11)), lost, 'another epoch')
  const differ: string[] = []
  for (const since of [undefined, ...Array.from({ length: 26 }, (_, seq) => ({ epoch: 'E', seq })), { epoch: 'X', seq: 4 }]) {
    const read = engineRead(since, 20, 11)
    const single = resumeFromRead(since, read)
    const batched = resumeFrom(batchRead(since, read, undefined), { since, seen: undefined, fresh: true })
    const replay = (from: number | undefined): string => read.messages.slice(from).map((each) => each.seq).join()
    if (batched === undefined || single.recovered !== batched.recovered || single.offset.seq !== batched.offset.seq ||
      single.offset.epoch !== batched.offset.epoch || replay(single.from) !== replay(batched.from)) {
      differ.push(since === undefined ? 'none' : `${since.epoch}:${since.seq}`)
    }
  }
  t.strictSame(differ, [], 'the poll and the relay decide every since alike')
})

await t.test('classify: next, duplicate, gap and new epoch', async (t) => {
  const at = { epoch: 'E', seq: 5 }
  t.equal(classify(at, { epoch: 'E', seq: 6 }), 'next')
  t.equal(classify(at, { epoch: 'E', seq: 5 }), 'duplicate', 'the last one delivered')
  t.equal(classify(at, { epoch: 'E', seq: 2 }), 'duplicate', 'an older one')
  t.equal(classify(at, { epoch: 'E', seq: 8 }), 'gap', 'pub/sub skipped 6 and 7')
  t.equal(classify(at, { epoch: 'F', seq: 1 }), 'new-epoch')
  t.equal(classify(at, { epoch: 'F', seq: 5 }), 'new-epoch', 'whatever its seq')
  t.equal(classify(undefined, { epoch: 'E', seq: 9 }), 'next', 'nothing seen yet: the first starts the stream')
})

await t.test('advance: moves the position in place, except for a duplicate', async (t) => {
  const position = { epoch: 'E', seq: 5 }
  t.equal(advance(position, { epoch: 'E', seq: 5 }), 'duplicate')
  t.strictSame(position, { epoch: 'E', seq: 5 })
  t.equal(advance(position, { epoch: 'E', seq: 6 }), 'next')
  t.strictSame(position, { epoch: 'E', seq: 6 })
  t.equal(advance(position, { epoch: 'E', seq: 9 }), 'gap')
  t.strictSame(position, { epoch: 'E', seq: 9 })
  t.equal(advance(position, { epoch: 'F', seq: 2 }), 'new-epoch')
  t.strictSame(position, { epoch: 'F', seq: 2 })
})

/** Every step of `merge` until it has nothing more, as `seq@source:arrival`. */
function drain (merge: ReplayMerge): string[] {
  const steps: string[] = []
  for (let step: MergeStep | undefined = merge.next(); step !== undefined; step = merge.next()) {
    steps.push(`${step.message.epoch}${step.message.seq}@${step.replayIndex === undefined ? 'live' : step.replayIndex}:${step.arrival}`)
  }
  return steps
}

await t.test('ReplayMerge: the replay from its index, then the held live messages, duplicates at the seam marked', async (t) => {
  const replay = [3, 4, 5, 6].map((seq) => message(seq))
  const held = [5, 6, 7].map((seq) => message(seq))
  const position = { epoch: 'E', seq: 3 }
  const merge = new ReplayMerge(position, replay, 1, held)
  t.equal(merge.done, false)
  t.strictSame(drain(merge), ['E4@1:next', 'E5@2:next', 'E6@3:next', 'E5@live:duplicate', 'E6@live:duplicate', 'E7@live:next'])
  t.equal(merge.done, true)
  t.strictSame(position, { epoch: 'E', seq: 7 }, 'the subscription\'s position follows the merge')
})

await t.test('ReplayMerge: held messages may arrive between steps; done only once they are consumed too', async (t) => {
  const held: ChannelMessage[] = []
  const merge = new ReplayMerge({ epoch: 'E', seq: 10 }, [11, 12].map((seq) => message(seq)), 0, held)
  t.strictSame(merge.next()?.message.seq, 11)
  held.push(message(12), message(13))
  t.strictSame(drain(merge), ['E12@1:next', 'E12@live:duplicate', 'E13@live:next'])
  t.equal(merge.done, true)
  held.push(message(14))
  t.equal(merge.done, false, 'a message held after the last step')
  t.strictSame(drain(merge), ['E14@live:next'])
  t.equal(merge.done, true)
})

await t.test('ReplayMerge: nothing to replay, a held gap and a held new epoch are reported as such', async (t) => {
  const position = { epoch: 'E', seq: 20 }
  const merge = new ReplayMerge(position, [message(19), message(20)], 2, [message(21), message(23), message(1, 'F'), message(2, 'F')])
  t.strictSame(drain(merge), ['E21@live:next', 'E23@live:gap', 'F1@live:new-epoch', 'F2@live:next'])
  t.strictSame(position, { epoch: 'F', seq: 2 })
  const empty = new ReplayMerge({ epoch: 'E', seq: 1 }, [], 0, [])
  t.equal(empty.done, true)
  t.equal(empty.next(), undefined)
})
