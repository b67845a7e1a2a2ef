/**
 * The engine contract of GET /v1/history and lifecycle events (SPEC §10, §12):
 * readHistoryPage, appendEvent and readEvents. Every engine passes the same tests
 * (engine.test.ts runs them on memory and Redis, cluster-engine.test.ts on a Cluster).
 * `makeEngine` returns a fresh, ready engine using the given settings, its own channels
 * and its own events stream.
 */
import type { Test } from 'tap'
import { EngineUnavailableError, type Engine, type RelaySettings } from '../../../src/server/engine/engine.js'
import { rejectionOf } from '../../helpers/async.js'

/** History of 5 (trimming within a test); the smallest events cap the gateway accepts. */
export const HISTORY_EVENTS_TEST_SETTINGS: RelaySettings = { historySize: 5, historyTtlSeconds: 60, idempotencyTtlSeconds: 60, inboundMaxLength: 1000, eventsMaxLength: 1000 }

const payload = (n: number): string => JSON.stringify({ n })

export async function historyEventsContract (t: Test, name: string, makeEngine: (relay: RelaySettings) => Promise<Engine>): Promise<void> {
  await t.test(`${name} engine history page and events contract`, async (t) => {
    const setup = async (t: Test): Promise<Engine> => {
      const engine = await makeEngine(HISTORY_EVENTS_TEST_SETTINGS)
      t.teardown(async () => { await engine.close() })
      return engine
    }
    const seqs = (read: { messages: ReadonlyArray<{ seq: number }> }): number[] => read.messages.map((message) => message.seq)

    await t.test('readHistoryPage without since: the latest `limit` retained messages, oldest first', async (t) => {
      const engine = await setup(t)
      const fresh = await engine.readHistoryPage('h', { limit: 3 })
      t.strictSame({ seq: fresh.seq, recovered: fresh.recovered, messages: fresh.messages }, { seq: 0, recovered: true, messages: [] }, 'a fresh channel: nothing')
      for (let n = 1; n <= 7; n += 1) await engine.publish('h', payload(n))
      const latest = await engine.readHistoryPage('h', { limit: 3 })
      t.equal(latest.epoch, fresh.epoch, 'the read kept the epoch it created')
      t.equal(latest.seq, 7)
      t.equal(latest.recovered, true)
      t.strictSame(latest.messages, [5, 6, 7].map((n) => ({ channel: 'h', epoch: fresh.epoch, seq: n, data: payload(n) })))
      t.strictSame(seqs(await engine.readHistoryPage('h', { limit: 100 })), [3, 4, 5, 6, 7], 'at most what is retained (historySize 5)')
      t.strictSame(seqs(await engine.readHistoryPage('h', { limit: 1 })), [7])
    })

    await t.test('readHistoryPage keeps a client publish\'s from, with and without since (SPEC §9)', async (t) => {
      const engine = await setup(t)
      const { epoch } = await engine.publish('h', payload(1), { from: 'alice' })
      await engine.publish('h', payload(2))
      const expected = [{ channel: 'h', epoch, seq: 1, data: payload(1), from: 'alice' }, { channel: 'h', epoch, seq: 2, data: payload(2) }]
      t.strictSame((await engine.readHistoryPage('h', { limit: 10 })).messages, expected, 'the latest page')
      t.strictSame((await engine.readHistoryPage('h', { since: { epoch, seq: 0 }, limit: 10 })).messages, expected, 'after since')
    })

    await t.test('readHistoryPage with since: at most `limit` after it, in order; readHistory is unchanged', async (t) => {
      const engine = await setup(t)
      let epoch = ''
      for (let n = 1; n <= 5; n += 1) epoch = (await engine.publish('h', payload(n))).epoch
      t.strictSame(seqs(await engine.readHistoryPage('h', { since: { epoch, seq: 1 }, limit: 2 })), [2, 3])
      t.strictSame(seqs(await engine.readHistoryPage('h', { since: { epoch, seq: 3 }, limit: 2 })), [4, 5])
      t.strictSame(seqs(await engine.readHistoryPage('h', { since: { epoch, seq: 3 }, limit: 10 })), [4, 5])
      const atHead = await engine.readHistoryPage('h', { since: { epoch, seq: 5 }, limit: 10 })
      t.strictSame([atHead.recovered, seqs(atHead)], [true, []], 'at the head: recovered, nothing')
      t.strictSame(seqs(await engine.readHistory('h', { epoch, seq: 1 })), [2, 3, 4, 5], 'readHistory still reads everything after since')
      t.strictSame(seqs(await engine.readHistory('h')), [], 'and a position read still reads none')
    })

    await t.test('readHistoryPage: a since from another epoch, trimmed away or ahead of the head is not recovered', async (t) => {
      const engine = await setup(t)
      let epoch = ''
      for (let n = 1; n <= 8; n += 1) epoch = (await engine.publish('h', payload(n))).epoch
      for (const since of [{ epoch: 'other', seq: 7 }, { epoch, seq: 1 }, { epoch, seq: 9 }]) {
        const read = await engine.readHistoryPage('h', { since, limit: 10 })
        t.strictSame({ epoch: read.epoch, seq: read.seq, recovered: read.recovered, messages: read.messages }, { epoch, seq: 8, recovered: false, messages: [] }, `since ${since.epoch}:${since.seq}`)
      }
      t.strictSame(seqs(await engine.readHistoryPage('h', { since: { epoch, seq: 3 }, limit: 10 })), [4, 5, 6, 7, 8], 'the oldest retained since is recovered')
    })

    await t.test('appendEvent: readEvents returns the fields exactly, in order, oldest first', async (t) => {
      const engine = await setup(t)
      t.strictSame(await engine.readEvents(10), [], 'none on a fresh engine')
      const first = { event: 'connect', userId: 'ünïcødé "a"', sessionId: 's1', connectionId: 'c1', instanceId: 'i1', ts: '1700000000000' }
      const second = { event: 'disconnect', userId: 'a', sessionId: 's1', connectionId: 'c1', instanceId: 'i1', ts: '1700000000001', code: '1000', reason: '' }
      await engine.appendEvent(first)
      await engine.appendEvent(second)
      const read = await engine.readEvents(10)
      t.strictSame(read, [first, second])
      t.strictSame(read.map((fields) => Object.keys(fields)), [Object.keys(first), Object.keys(second)], 'field order kept')
      t.strictSame(await engine.readEvents(1), [second], 'the latest `count`')
    })

    await t.test('appendEvent: the stream stays near eventsMaxLength (approximate trim)', async (t) => {
      const engine = await setup(t)
      const cap = HISTORY_EVENTS_TEST_SETTINGS.eventsMaxLength ?? 0
      for (let n = 0; n < cap * 2 + 300; n += 1) await engine.appendEvent({ event: 'connect', n: String(n) })
      const kept = await engine.readEvents(cap * 3)
      // Redis' MAXLEN ~ trims whole nodes (100 entries by default): never below the cap, not far above it.
      t.ok(kept.length >= cap && kept.length <= cap + 100, `${kept.length} kept of ${cap * 2 + 300}, cap ${cap}`)
      t.strictSame(kept.at(-1), { event: 'connect', n: String(cap * 2 + 299) }, 'the newest is kept')
    })

    await t.test('a closed engine rejects readHistoryPage, appendEvent and readEvents with EngineUnavailableError', async (t) => {
      const engine = await makeEngine(HISTORY_EVENTS_TEST_SETTINGS)
      await engine.close()
      t.type(await rejectionOf(engine.readHistoryPage('h', { limit: 1 })), EngineUnavailableError)
      t.type(await rejectionOf(engine.appendEvent({ event: 'connect' })), EngineUnavailableError)
      t.type(await rejectionOf(engine.readEvents(1)), EngineUnavailableError)
    })
  })
}
