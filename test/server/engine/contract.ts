/**
 * The engine contract (src/server/engine/engine.ts): every engine passes the same
 * tests, so the gateway cannot tell them apart. `makeEngine` returns a fresh,
 * ready engine for each subtest; `inspectKeys`, when given, lists what the engine
 * stored so the contract can also check that consumed tickets leave nothing behind.
 */
import { randomBytes } from 'node:crypto'
import type { Test } from 'tap'
import { EngineUnavailableError, type Engine, type TicketRecord } from '../../../src/server/engine/engine.js'
import { rejectionOf, sleep } from '../../helpers/async.js'

export interface EngineUnderTest {
  readonly engine: Engine
  /** Every key the engine holds right now (Redis: the keys under its prefix). */
  readonly inspectKeys?: () => Promise<string[]>
}

/** A fresh hash-shaped key (the engines never see raw tickets). */
function freshHash (): string {
  return randomBytes(32).toString('base64url')
}

function record (overrides: Partial<TicketRecord> = {}): TicketRecord {
  const issuedAt = Date.now()
  return { sub: 'alice', sessionId: 's1', issuedAt, expiresAt: issuedAt + 30_000, channels: ['chat:*'], ...overrides }
}

export async function engineContract (t: Test, name: string, makeEngine: () => Promise<EngineUnderTest>): Promise<void> {
  await t.test(`${name} engine contract`, async (t) => {
    const setup = async (t: Test): Promise<EngineUnderTest> => {
      const underTest = await makeEngine()
      t.teardown(async () => { await underTest.engine.close() })
      return underTest
    }

    await t.test('is ready once started', async (t) => {
      const { engine } = await setup(t)
      t.equal(engine.isReady(), true)
    })

    await t.test('store then consume returns the record exactly', async (t) => {
      const { engine, inspectKeys } = await setup(t)
      const hash = freshHash()
      const stored = record({ sub: 'ünïcødé "sub" \\ with:colons', sessionId: 'session/with spaces' })
      await engine.storeTicket(hash, stored, 60)
      if (inspectKeys !== undefined) {
        const keys = await inspectKeys()
        t.equal(keys.length, 1, 'one key stored')
        t.ok(keys[0]!.endsWith(hash), 'the key is named after the hash')
      }
      t.strictSame(await engine.consumeTicket(hash), stored)
      if (inspectKeys !== undefined) t.strictSame(await inspectKeys(), [], 'nothing is left after consume')
    })

    await t.test('publish patterns round-trip; a record stored without them comes back without them (SPEC §9)', async (t) => {
      const { engine } = await setup(t)
      const withPublish = record({ publish: ['room:*', 'doc:**'] })
      const withoutPublish = record()
      const first = freshHash()
      const second = freshHash()
      await engine.storeTicket(first, withPublish, 60)
      await engine.storeTicket(second, withoutPublish, 60)
      t.strictSame(await engine.consumeTicket(first), withPublish)
      const consumed = await engine.consumeTicket(second)
      t.strictSame(consumed, withoutPublish)
      t.equal(consumed?.publish, undefined, 'no publish rights')
    })

    await t.test('a second consume returns null', async (t) => {
      const { engine } = await setup(t)
      const hash = freshHash()
      const stored = record()
      await engine.storeTicket(hash, stored, 60)
      t.strictSame(await engine.consumeTicket(hash), stored)
      t.equal(await engine.consumeTicket(hash), null)
      t.equal(await engine.consumeTicket(hash), null)
    })

    await t.test('an unknown hash returns null', async (t) => {
      const { engine } = await setup(t)
      await engine.storeTicket(freshHash(), record(), 60)
      t.equal(await engine.consumeTicket(freshHash()), null)
    })

    await t.test('tickets are independent of each other', async (t) => {
      const { engine } = await setup(t)
      const first = { hash: freshHash(), record: record({ sub: 'alice', sessionId: 's1' }) }
      const second = { hash: freshHash(), record: record({ sub: 'bob', sessionId: 's2' }) }
      await engine.storeTicket(first.hash, first.record, 60)
      await engine.storeTicket(second.hash, second.record, 60)
      t.strictSame(await engine.consumeTicket(second.hash), second.record)
      t.strictSame(await engine.consumeTicket(first.hash), first.record)
    })

    await t.test('a ticket is gone once its storage TTL has passed', async (t) => {
      const { engine, inspectKeys } = await setup(t)
      const expiring = freshHash()
      const control = freshHash()
      // Validity (expiresAt) is far off: only the storage TTL removes it.
      const stored = record({ expiresAt: Date.now() + 3_600_000 })
      await engine.storeTicket(expiring, stored, 1)
      await engine.storeTicket(control, stored, 1)
      t.strictSame(await engine.consumeTicket(control), stored, 'still there before the TTL')
      await sleep(1200)
      t.equal(await engine.consumeTicket(expiring), null, 'gone after the TTL')
      if (inspectKeys !== undefined) t.strictSame(await inspectKeys(), [], 'no key is left')
    })

    await t.test('of 50 concurrent consumers of one ticket exactly one gets the record', async (t) => {
      const { engine, inspectKeys } = await setup(t)
      const hash = freshHash()
      const stored = record()
      await engine.storeTicket(hash, stored, 60)
      const results = await Promise.all(Array.from({ length: 50 }, async () => await engine.consumeTicket(hash)))
      const winners = results.filter((result) => result !== null)
      t.equal(winners.length, 1, 'exactly one record')
      t.strictSame(winners[0], stored)
      t.equal(results.filter((result) => result === null).length, 49, 'exactly 49 nulls')
      if (inspectKeys !== undefined) t.strictSame(await inspectKeys(), [])
    })

    await t.test('a closed engine rejects with EngineUnavailableError', async (t) => {
      const { engine } = await setup(t)
      const hash = freshHash()
      await engine.storeTicket(hash, record(), 60)
      await engine.close()
      t.equal(engine.isReady(), false)
      const storeError = await rejectionOf(engine.storeTicket(freshHash(), record(), 60))
      t.ok(storeError instanceof EngineUnavailableError, `storeTicket rejects with EngineUnavailableError (got ${String(storeError)})`)
      const consumeError = await rejectionOf(engine.consumeTicket(hash))
      t.ok(consumeError instanceof EngineUnavailableError, `consumeTicket rejects with EngineUnavailableError (got ${String(consumeError)})`)
    })

    await t.test('no bans are in force on a fresh engine', async (t) => {
      const { engine } = await setup(t)
      t.strictSame(await engine.loadRevocations(), [])
    })

    await t.test('a stored ban is loaded with its target and the time it has left', async (t) => {
      const { engine } = await setup(t)
      await engine.storeRevocation({ kind: 'user', id: 'alice' }, 60)
      await engine.storeRevocation({ kind: 'session', id: 'tab:1 "quoted" ünï' }, 3600)
      const loaded = await engine.loadRevocations()
      const byTarget = new Map(loaded.map((ban) => [`${ban.target.kind}/${ban.target.id}`, ban.remainingMs]))
      t.strictSame([...byTarget.keys()].sort(), ['session/tab:1 "quoted" ünï', 'user/alice'], 'both targets, ids verbatim')
      const user = byTarget.get('user/alice')!
      const session = byTarget.get('session/tab:1 "quoted" ünï')!
      t.ok(user > 50_000 && user <= 60_000, `user ban: about 60 s left (${user} ms)`)
      t.ok(session > 3_590_000 && session <= 3_600_000, `session ban: about an hour left (${session} ms)`)
    })

    await t.test('a user ban and a session ban of the same id are different bans', async (t) => {
      const { engine } = await setup(t)
      await engine.storeRevocation({ kind: 'user', id: 'same' }, 60)
      t.strictSame((await engine.loadRevocations()).map((ban) => ban.target), [{ kind: 'user', id: 'same' }])
      await engine.storeRevocation({ kind: 'session', id: 'same' }, 60)
      t.strictSame((await engine.loadRevocations()).map((ban) => ban.target.kind).sort(), ['session', 'user'])
    })

    await t.test('bans only get longer: a shorter ban of the same target keeps the longer one', async (t) => {
      const { engine } = await setup(t)
      const target = { kind: 'user', id: 'bob' } as const
      await engine.storeRevocation(target, 600)
      await engine.storeRevocation(target, 5)
      const kept = await engine.loadRevocations()
      t.equal(kept.length, 1, 'one ban per target')
      t.ok(kept[0]!.remainingMs > 590_000, `the 600 s ban is kept (${kept[0]!.remainingMs} ms left)`)
      await engine.storeRevocation(target, 7200)
      const extended = await engine.loadRevocations()
      t.equal(extended.length, 1)
      t.ok(extended[0]!.remainingMs > 7_190_000, `a longer ban extends it (${extended[0]!.remainingMs} ms left)`)
    })

    await t.test('a ban ends after its seconds and leaves nothing behind', async (t) => {
      const { engine, inspectKeys } = await setup(t)
      await engine.storeRevocation({ kind: 'session', id: 's-short' }, 1)
      t.equal((await engine.loadRevocations()).length, 1, 'in force at first')
      await sleep(1200)
      t.strictSame(await engine.loadRevocations(), [], 'ended')
      if (inspectKeys !== undefined) t.strictSame(await inspectKeys(), [], 'no key is left')
    })

    await t.test('a closed engine rejects ban operations with EngineUnavailableError', async (t) => {
      const { engine } = await setup(t)
      await engine.close()
      const storeError = await rejectionOf(engine.storeRevocation({ kind: 'user', id: 'alice' }, 60))
      t.ok(storeError instanceof EngineUnavailableError, `storeRevocation rejects with EngineUnavailableError (got ${String(storeError)})`)
      const loadError = await rejectionOf(engine.loadRevocations())
      t.ok(loadError instanceof EngineUnavailableError, `loadRevocations rejects with EngineUnavailableError (got ${String(loadError)})`)
    })

    await t.test('a counter counts hits within its window, keys apart, and starts again after it', async (t) => {
      const { engine, inspectKeys } = await setup(t)
      const first = await engine.countHit('user:alice', 400)
      t.equal(first.count, 1)
      t.ok(first.ttlMs > 0 && first.ttlMs <= 400, `the window starts with the first hit (${first.ttlMs} ms left)`)
      t.equal((await engine.countHit('user:alice', 400)).count, 2)
      const third = await engine.countHit('user:alice', 400)
      t.equal(third.count, 3)
      t.ok(third.ttlMs > 0 && third.ttlMs <= first.ttlMs, `later hits keep the window's end (${third.ttlMs} ms left)`)
      t.equal((await engine.countHit('user:bob', 400)).count, 1, 'another key counts apart')
      await sleep(500)
      t.equal((await engine.countHit('user:alice', 400)).count, 1, 'a new window after the old one ended')
      await sleep(500)
      if (inspectKeys !== undefined) t.strictSame(await inspectKeys(), [], 'ended windows leave no key')
    })

    await t.test('storeTicketCounted stores a consumable ticket and counts on the same window as countHit', async (t) => {
      const { engine, inspectKeys } = await setup(t)
      const first = freshHash()
      const stored = record()
      const hit = await engine.storeTicketCounted(first, stored, 60, 'user:carol', 400)
      t.equal(hit.count, 1)
      t.ok(hit.ttlMs > 0 && hit.ttlMs <= 400, `the window starts with the first hit (${hit.ttlMs} ms left)`)
      t.equal((await engine.countHit('user:carol', 400)).count, 2, 'one counter with countHit')
      const second = freshHash()
      t.equal((await engine.storeTicketCounted(second, stored, 60, 'user:carol', 400)).count, 3)
      t.equal((await engine.storeTicketCounted(freshHash(), stored, 1, 'user:dave', 400)).count, 1, 'another key counts apart')
      t.strictSame(await engine.consumeTicket(first), stored)
      t.strictSame(await engine.consumeTicket(second), stored)
      t.equal(await engine.consumeTicket(first), null, 'consumed once')
      await sleep(500)
      t.equal((await engine.storeTicketCounted(freshHash(), stored, 1, 'user:carol', 400)).count, 1, 'a new window after the old one ended')
      await sleep(1600)
      if (inspectKeys !== undefined) t.strictSame(await inspectKeys(), [], 'expired tickets and ended windows leave no key')
    })

    await t.test('a closed engine rejects storeTicketCounted with EngineUnavailableError', async (t) => {
      const { engine } = await setup(t)
      await engine.close()
      const error = await rejectionOf(engine.storeTicketCounted(freshHash(), record(), 60, 'user:alice', 1000))
      t.ok(error instanceof EngineUnavailableError, `storeTicketCounted rejects with EngineUnavailableError (got ${String(error)})`)
    })

    await t.test('a closed engine rejects countHit with EngineUnavailableError', async (t) => {
      const { engine } = await setup(t)
      await engine.close()
      const error = await rejectionOf(engine.countHit('user:alice', 1000))
      t.ok(error instanceof EngineUnavailableError, `countHit rejects with EngineUnavailableError (got ${String(error)})`)
    })

    await t.test('readiness listeners hear the close; unsubscribed ones do not', async (t) => {
      const { engine } = await setup(t)
      t.equal(engine.isReady(), true)
      const heard: boolean[] = []
      const dropped: boolean[] = []
      engine.onReadyChange((ready) => { heard.push(ready) })
      const unsubscribe = engine.onReadyChange((ready) => { dropped.push(ready) })
      unsubscribe()
      await engine.close()
      // Late connection events after close must not flip readiness back.
      await sleep(50)
      t.strictSame(heard, [false], 'called once, with false')
      t.strictSame(dropped, [], 'an unsubscribed listener is not called')
      t.equal(engine.isReady(), false)
    })
  })
}
