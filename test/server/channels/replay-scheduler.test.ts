import t from 'tap'
import { ReplayScheduler, type ReplayJob } from '../../../src/server/channels/replay-scheduler.js'

/** The replay budget (src/server/channels/replay-scheduler.ts): frames per turn of the event loop. */

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
