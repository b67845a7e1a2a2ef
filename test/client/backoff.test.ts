import t from 'tap'
import { Backoff } from '../../packages/client/src/backoff.js'

await t.test('ceilings double from 1 s to the 16 s cap; full jitter scales them', async (t) => {
  const top = new Backoff({ random: () => 0.999999 })
  t.same(Array.from({ length: 7 }, () => top.next()), [999, 1999, 3999, 7999, 15999, 15999, 15999])
  t.equal(top.attempts, 7)
  const bottom = new Backoff({ random: () => 0 })
  t.same(Array.from({ length: 3 }, () => bottom.next()), [0, 0, 0])
  const half = new Backoff({ random: () => 0.5, initialMs: 100, maxMs: 400 })
  t.same(Array.from({ length: 4 }, () => half.next()), [50, 100, 200, 200])
})

await t.test('reset starts over', async (t) => {
  const backoff = new Backoff({ random: () => 0.999999 })
  backoff.next()
  backoff.next()
  backoff.reset()
  t.equal(backoff.attempts, 0)
  t.equal(backoff.next(), 999)
})

await t.test('real randomness stays within the ceiling', async (t) => {
  const backoff = new Backoff()
  for (let attempt = 0; attempt < 10; attempt += 1) {
    const ceiling = Math.min(16_000, 1000 * 2 ** attempt)
    const delay = backoff.next()
    t.ok(delay >= 0 && delay < ceiling, `attempt ${attempt}: ${delay} < ${ceiling}`)
  }
})
