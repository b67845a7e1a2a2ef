/**
 * The relay contract (src/server/engine/engine.ts: publish, readHistory, listen):
 * channel history with an epoch and a gapless seq, idempotent publish, live
 * delivery. Every engine passes the same tests (SPEC §5 resume semantics).
 * `makeEngine` returns a fresh, ready engine using the given settings for each
 * subtest; `makePeer`, when given, returns another ready instance sharing the
 * first one's state (Redis: same server, same key prefix).
 */
import type { Test } from 'tap'
import {
  EngineUnavailableError,
  type ChannelMessage,
  type Engine,
  type RelaySettings
} from '../../../src/server/engine/engine.js'
import { eventually } from '../../helpers/gateway.js'
import { rejectionOf, sleep } from '../../helpers/async.js'

export interface RelayUnderTest {
  readonly engine: Engine
  /** Another instance sharing `engine`'s channels (multi-instance engines only). */
  readonly makePeer?: () => Promise<Engine>
}

/** Small on purpose: trimming and expiry happen within a test. */
export const RELAY_TEST_SETTINGS: RelaySettings = { historySize: 5, historyTtlSeconds: 2, idempotencyTtlSeconds: 2, inboundMaxLength: 1000 }

/** Offsets carry the epoch as `<epoch>:<seq>` (src/protocol/offsets.ts). */
const EPOCH_PATTERN = /^[A-Za-z0-9_-]{1,32}$/

/** Every live message the engine delivers, in arrival order. */
function collect (engine: Engine): ChannelMessage[] {
  const received: ChannelMessage[] = []
  engine.onChannelMessage((message) => { received.push(message) })
  return received
}

const payload = (n: number): string => JSON.stringify({ n })

export async function relayContract (
  t: Test,
  name: string,
  makeEngine: (relay: RelaySettings) => Promise<RelayUnderTest>,
  options: { readonly multiInstance: boolean }
): Promise<void> {
  await t.test(`${name} engine relay contract`, async (t) => {
    const setup = async (t: Test): Promise<RelayUnderTest> => {
      const underTest = await makeEngine(RELAY_TEST_SETTINGS)
      t.teardown(async () => { await underTest.engine.close() })
      return underTest
    }

    await t.test('appendInbound: once per (session, id) within the idempotency TTL', async (t) => {
      const { engine } = await setup(t)
      const message = { userId: 'alice', sessionId: 's1', connectionId: 'c1', id: 'm1', data: '{"a":1}' }
      t.equal(await engine.appendInbound(message), true)
      t.equal(await engine.appendInbound({ ...message, connectionId: 'c2' }), false, 'a retry from another connection of the session')
      t.equal(await engine.appendInbound({ ...message, sessionId: 's2' }), true, 'another session')
      t.equal(await engine.appendInbound({ ...message, id: 'm2' }), true, 'another id')
      await new Promise((resolve) => setTimeout(resolve, RELAY_TEST_SETTINGS.idempotencyTtlSeconds * 1000 + 300))
      t.equal(await engine.appendInbound(message), true, 'remembered no longer than the TTL')
    })

    await t.test('publish: seq starts at 1 and grows by exactly 1; the epoch is stable per channel', async (t) => {
      const { engine } = await setup(t)
      const first = await engine.publish('a', payload(1))
      t.match(first.epoch, EPOCH_PATTERN, 'the epoch fits in an offset')
      t.strictSame(first, { epoch: first.epoch, seq: 1, duplicate: false })
      t.strictSame(await engine.publish('a', payload(2)), { epoch: first.epoch, seq: 2, duplicate: false })
      t.strictSame(await engine.publish('a', payload(3)), { epoch: first.epoch, seq: 3, duplicate: false })
    })

    await t.test('channels are independent: own seq from 1, own random epoch', async (t) => {
      const { engine } = await setup(t)
      const a1 = await engine.publish('a', payload(1))
      const a2 = await engine.publish('a', payload(2))
      const b1 = await engine.publish('b', payload(1))
      const a3 = await engine.publish('a', payload(3))
      const b2 = await engine.publish('b', payload(2))
      t.strictSame([a1.seq, a2.seq, a3.seq], [1, 2, 3])
      t.strictSame([b1.seq, b2.seq], [1, 2])
      t.equal(b2.epoch, b1.epoch)
      t.equal(a3.epoch, a1.epoch)
      t.not(a1.epoch, b1.epoch, 'epochs differ between channels')
      t.match(b1.epoch, EPOCH_PATTERN)
    })

    await t.test('50 concurrent publishes on one channel take seqs 1..50 exactly once', async (t) => {
      const { engine } = await setup(t)
      const results = await Promise.all(Array.from({ length: 50 }, async (_, i) => await engine.publish('busy', payload(i))))
      t.strictSame(results.map((result) => result.seq).sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1))
      t.equal(new Set(results.map((result) => result.epoch)).size, 1, 'one epoch')
      t.equal(results.filter((result) => result.duplicate).length, 0)
      const position = await engine.readHistory('busy')
      t.strictSame(position, { epoch: results[0]!.epoch, seq: 50, recovered: true, messages: [] })
    })

    await t.test('readHistory without since: the position; a fresh channel reads seq 0 and keeps that epoch', async (t) => {
      const { engine } = await setup(t)
      const fresh = await engine.readHistory('fresh')
      t.match(fresh.epoch, EPOCH_PATTERN)
      t.strictSame(fresh, { epoch: fresh.epoch, seq: 0, recovered: true, messages: [] })
      t.strictSame(await engine.readHistory('fresh'), fresh, 'a second read sees the same epoch')
      t.strictSame(await engine.publish('fresh', payload(1)), { epoch: fresh.epoch, seq: 1, duplicate: false },
        'the first publish keeps the epoch the read created')
      await engine.publish('fresh', payload(2))
      await engine.publish('fresh', payload(3))
      t.strictSame(await engine.readHistory('fresh'), { epoch: fresh.epoch, seq: 3, recovered: true, messages: [] },
        'no messages without since')
      const other = await engine.readHistory('other')
      t.strictSame(other, { epoch: other.epoch, seq: 0, recovered: true, messages: [] })
      t.not(other.epoch, fresh.epoch)
    })

    await t.test('readHistory with since: the messages after it, in order, exactly', async (t) => {
      const { engine } = await setup(t)
      const data = ['{"n":1}', '[1,2,3]', '"text"', 'null', '{"deep":{"x":[true,false]}}']
      const results = []
      for (const each of data) results.push(await engine.publish('room', each))
      await engine.publish('elsewhere', '{"noise":true}')
      const epoch = results[0]!.epoch
      const message = (seq: number): ChannelMessage => ({ channel: 'room', epoch, seq, data: data[seq - 1]! })

      t.strictSame(await engine.readHistory('room', { epoch, seq: 0 }),
        { epoch, seq: 5, recovered: true, messages: [message(1), message(2), message(3), message(4), message(5)] }, 'since 0: all')
      t.strictSame(await engine.readHistory('room', { epoch, seq: 2 }),
        { epoch, seq: 5, recovered: true, messages: [message(3), message(4), message(5)] }, 'since 2: 3..5')
      t.strictSame(await engine.readHistory('room', { epoch, seq: 4 }),
        { epoch, seq: 5, recovered: true, messages: [message(5)] }, 'since 4: 5')
      t.strictSame(await engine.readHistory('room', { epoch, seq: 5 }),
        { epoch, seq: 5, recovered: true, messages: [] }, 'since the last seq: recovered, nothing to replay')
    })

    await t.test('readHistory with a since from another epoch: not recovered', async (t) => {
      const { engine } = await setup(t)
      const a = await engine.publish('a', payload(1))
      await engine.publish('a', payload(2))
      const b = await engine.publish('b', payload(1))
      t.strictSame(await engine.readHistory('a', { epoch: b.epoch, seq: 0 }),
        { epoch: a.epoch, seq: 2, recovered: false, messages: [] }, 'the epoch of another channel')
      const invented = a.epoch === 'AAAAAAAA' ? 'BBBBBBBB' : 'AAAAAAAA'
      t.strictSame(await engine.readHistory('a', { epoch: invented, seq: 1 }),
        { epoch: a.epoch, seq: 2, recovered: false, messages: [] }, 'an unknown epoch')
      t.strictSame(await engine.readHistory('a', { epoch: invented, seq: 2 }),
        { epoch: a.epoch, seq: 2, recovered: false, messages: [] }, 'an unknown epoch even at the current seq')
    })

    await t.test('readHistory with a since ahead of the head: not recovered, at the head, nothing (SPEC §5)', async (t) => {
      const { engine } = await setup(t)
      const first = await engine.publish('ahead', payload(1))
      await engine.publish('ahead', payload(2))
      const epoch = first.epoch
      for (const seq of [3, 4, 999_999_999]) {
        t.strictSame(await engine.readHistory('ahead', { epoch, seq }),
          { epoch, seq: 2, recovered: false, messages: [] }, `since ${seq} with the head at 2`)
      }
      t.strictSame(await engine.readHistory('ahead', { epoch, seq: 2 }),
        { epoch, seq: 2, recovered: true, messages: [] }, 'since at the head is still recovered')
      const third = await engine.publish('ahead', payload(3))
      t.strictSame(third, { epoch, seq: 3, duplicate: false }, 'a read ahead changes nothing')
      t.strictSame(await engine.readHistory('ahead', { epoch, seq: 3 }), { epoch, seq: 3, recovered: true, messages: [] })

      const empty = await engine.readHistory('empty')
      t.strictSame(await engine.readHistory('empty', { epoch: empty.epoch, seq: 1 }),
        { epoch: empty.epoch, seq: 0, recovered: false, messages: [] }, 'a channel with no message yet has no seq 1')
    })

    await t.test('the history keeps historySize messages; a since older than that is not recovered', async (t) => {
      const { engine } = await setup(t)
      let epoch = ''
      for (let n = 1; n <= 8; n++) epoch = (await engine.publish('trim', payload(n))).epoch
      const message = (seq: number): ChannelMessage => ({ channel: 'trim', epoch, seq, data: payload(seq) })
      for (const seq of [0, 1, 2]) {
        t.strictSame(await engine.readHistory('trim', { epoch, seq }),
          { epoch, seq: 8, recovered: false, messages: [] }, `since ${seq}: trimmed away`)
      }
      t.strictSame(await engine.readHistory('trim', { epoch, seq: 3 }),
        { epoch, seq: 8, recovered: true, messages: [message(4), message(5), message(6), message(7), message(8)] },
        'since exactly at the window edge: all 5 retained')
      t.strictSame(await engine.readHistory('trim', { epoch, seq: 6 }),
        { epoch, seq: 8, recovered: true, messages: [message(7), message(8)] })
      t.strictSame(await engine.readHistory('trim', { epoch, seq: 8 }), { epoch, seq: 8, recovered: true, messages: [] })
    })

    await t.test('JSON text survives verbatim: escapes, real newlines, unicode', async (t) => {
      const { engine } = await setup(t)
      const received = collect(engine)
      await engine.listen('json')
      const escaped = '{"a":"x\\ny","b":"é🚀"}'
      const pretty = JSON.stringify({ text: 'line1\nline2', emoji: '🚀', nested: { list: [1, 'ü'] } }, null, 2)
      t.ok(pretty.includes('\n'), 'the pretty JSON has real newlines')
      const spaced = ' { "k" : "\\u00e9\\t" } '
      const first = await engine.publish('json', escaped)
      await engine.publish('json', pretty)
      await engine.publish('json', spaced)
      const epoch = first.epoch
      const expected: ChannelMessage[] = [
        { channel: 'json', epoch, seq: 1, data: escaped },
        { channel: 'json', epoch, seq: 2, data: pretty },
        { channel: 'json', epoch, seq: 3, data: spaced }
      ]
      t.strictSame((await engine.readHistory('json', { epoch, seq: 0 })).messages, expected, 'from history')
      await eventually(() => received.length >= 3, 5000)
      t.strictSame(received, expected, 'live')
    })

    await t.test('history expires after historyTtlSeconds of silence: a new epoch, the old since not recovered', async (t) => {
      const { engine } = await setup(t)
      const first = await engine.publish('quiet', payload(1))
      await sleep(1200)
      // A publish refreshes the TTL: the first message is older than the TTL but still kept.
      await engine.publish('quiet', payload(2))
      await sleep(1200)
      const epoch = first.epoch
      t.strictSame(await engine.readHistory('quiet', { epoch, seq: 0 }), {
        epoch,
        seq: 2,
        recovered: true,
        messages: [{ channel: 'quiet', epoch, seq: 1, data: payload(1) }, { channel: 'quiet', epoch, seq: 2, data: payload(2) }]
      }, 'kept while messages keep coming')
      await sleep(2300)
      const after = await engine.readHistory('quiet')
      t.not(after.epoch, epoch, 'a new epoch')
      t.match(after.epoch, EPOCH_PATTERN)
      t.strictSame(after, { epoch: after.epoch, seq: 0, recovered: true, messages: [] })
      t.strictSame(await engine.readHistory('quiet', { epoch, seq: 2 }),
        { epoch: after.epoch, seq: 0, recovered: false, messages: [] }, 'the old since is not recovered')
      t.strictSame(await engine.publish('quiet', payload(3)), { epoch: after.epoch, seq: 1, duplicate: false },
        'publishing starts again at 1 in the new epoch')
    })

    await t.test('a channel that was only read also expires', async (t) => {
      const { engine } = await setup(t)
      const read = await engine.readHistory('unused')
      await sleep(2300)
      const after = await engine.readHistory('unused')
      t.not(after.epoch, read.epoch)
      t.strictSame(after, { epoch: after.epoch, seq: 0, recovered: true, messages: [] })
    })

    await t.test('idempotency: the same key publishes once; other keys and channels are independent', async (t) => {
      const { engine } = await setup(t)
      const first = await engine.publish('orders', '{"v":1}', { idempotencyKey: 'k1' })
      t.strictSame(first, { epoch: first.epoch, seq: 1, duplicate: false })
      t.strictSame(await engine.publish('orders', '{"v":"retry"}', { idempotencyKey: 'k1' }),
        { epoch: first.epoch, seq: 1, duplicate: true }, 'the retry gets the first offset back')
      const epoch = first.epoch
      t.strictSame(await engine.readHistory('orders', { epoch, seq: 0 }),
        { epoch, seq: 1, recovered: true, messages: [{ channel: 'orders', epoch, seq: 1, data: '{"v":1}' }] }, 'one message stored')

      t.strictSame(await engine.publish('orders', '{"v":2}', { idempotencyKey: 'k2' }), { epoch, seq: 2, duplicate: false }, 'another key')
      t.strictSame(await engine.publish('orders', '{"v":3}'), { epoch, seq: 3, duplicate: false }, 'no key')
      t.strictSame(await engine.publish('orders', '{"v":4}'), { epoch, seq: 4, duplicate: false }, 'no key is never a duplicate')
      t.strictSame(await engine.publish('orders', '{"v":"again"}', { idempotencyKey: 'k2' }), { epoch, seq: 2, duplicate: true })

      const elsewhere = await engine.publish('invoices', '{"w":1}', { idempotencyKey: 'k1' })
      t.strictSame(elsewhere, { epoch: elsewhere.epoch, seq: 1, duplicate: false }, 'the same key on another channel publishes')
      t.not(elsewhere.epoch, epoch)

      t.strictSame((await engine.readHistory('orders', { epoch, seq: 0 })).messages.map((message) => [message.seq, message.data]),
        [[1, '{"v":1}'], [2, '{"v":2}'], [3, '{"v":3}'], [4, '{"v":4}']], 'the history holds each message once')
    })

    await t.test('idempotency: of 20 concurrent publishes with one key exactly one publishes', async (t) => {
      const { engine } = await setup(t)
      const results = await Promise.all(Array.from({ length: 20 }, async (_, i) =>
        await engine.publish('race', payload(i), { idempotencyKey: 'same' })))
      const published = results.filter((result) => !result.duplicate)
      t.equal(published.length, 1, 'exactly one is not a duplicate')
      t.equal(results.filter((result) => result.duplicate).length, 19)
      for (const result of results) t.strictSame({ epoch: result.epoch, seq: result.seq }, { epoch: published[0]!.epoch, seq: 1 })
      const history = await engine.readHistory('race', { epoch: published[0]!.epoch, seq: 0 })
      t.equal(history.seq, 1)
      t.equal(history.messages.length, 1)
    })

    await t.test('idempotency: after idempotencyTtlSeconds the key publishes again', async (t) => {
      const { engine } = await setup(t)
      const first = await engine.publish('retry', payload(1), { idempotencyKey: 'k' })
      await sleep(1200)
      // Keeps the history alive (its TTL restarts) while the key's TTL runs out.
      t.strictSame(await engine.publish('retry', payload(2)), { epoch: first.epoch, seq: 2, duplicate: false })
      t.strictSame(await engine.publish('retry', payload(99), { idempotencyKey: 'k' }), { epoch: first.epoch, seq: 1, duplicate: true },
        'still a duplicate before the TTL')
      await sleep(1100)
      t.strictSame(await engine.publish('retry', payload(3), { idempotencyKey: 'k' }), { epoch: first.epoch, seq: 3, duplicate: false },
        'a new message after the TTL')
      t.strictSame(await engine.publish('retry', payload(98), { idempotencyKey: 'k' }), { epoch: first.epoch, seq: 3, duplicate: true },
        'and the key now names the new one')
      t.strictSame((await engine.readHistory('retry', { epoch: first.epoch, seq: 0 })).messages.map((message) => message.data),
        [payload(1), payload(2), payload(3)])
    })

    await t.test('live: each publish on a listened channel is delivered once, exactly; others are not; unlisten stops it', async (t) => {
      const { engine } = await setup(t)
      const received = collect(engine)
      await engine.listen('live')
      const results = []
      for (let n = 1; n <= 3; n++) results.push(await engine.publish('live', payload(n)))
      await engine.publish('unheard', payload(1))
      await engine.publish('unheard', payload(2))
      await eventually(() => received.length >= 3, 5000)
      await sleep(100)
      const epoch = results[0]!.epoch
      t.strictSame(received, [1, 2, 3].map((seq) => ({ channel: 'live', epoch, seq, data: payload(seq) })),
        'three messages, once each, nothing from the channel not listened to')

      await engine.unlisten('live')
      await engine.publish('live', payload(4))
      await sleep(150)
      t.equal(received.length, 3, 'nothing after unlisten')

      await engine.listen('unheard')
      const third = await engine.publish('unheard', payload(3))
      await eventually(() => received.length >= 4, 5000)
      await sleep(100)
      t.strictSame(received.slice(3), [{ channel: 'unheard', epoch: third.epoch, seq: 3, data: payload(3) }], 'listening later works')
    })

    await t.test('a closed engine rejects publish, readHistory and listen with EngineUnavailableError', async (t) => {
      const { engine } = await setup(t)
      await engine.publish('a', payload(1))
      await engine.close()
      const publishError = await rejectionOf(engine.publish('a', payload(2)))
      t.ok(publishError instanceof EngineUnavailableError, `publish rejects with EngineUnavailableError (got ${String(publishError)})`)
      const idempotentError = await rejectionOf(engine.publish('a', payload(2), { idempotencyKey: 'k' }))
      t.ok(idempotentError instanceof EngineUnavailableError, `idempotent publish rejects with EngineUnavailableError (got ${String(idempotentError)})`)
      const readError = await rejectionOf(engine.readHistory('a'))
      t.ok(readError instanceof EngineUnavailableError, `readHistory rejects with EngineUnavailableError (got ${String(readError)})`)
      const sinceError = await rejectionOf(engine.readHistory('a', { epoch: 'x', seq: 0 }))
      t.ok(sinceError instanceof EngineUnavailableError, `readHistory with since rejects with EngineUnavailableError (got ${String(sinceError)})`)
      const listenError = await rejectionOf(engine.listen('a'))
      t.ok(listenError instanceof EngineUnavailableError, `listen rejects with EngineUnavailableError (got ${String(listenError)})`)
    })

    await t.test('from (SPEC §9): stored with a client publish, read back and delivered live exactly; a backend publish has none', async (t) => {
      const { engine } = await setup(t)
      const received = collect(engine)
      await engine.listen('room')
      const from = 'ünï "user" \\ with:colons\nand a newline'
      const first = await engine.publish('room', payload(1), { from })
      await engine.publish('room', payload(2))
      await engine.publish('room', '{"from":"forged"}', { from: 'bob' })
      t.strictSame(await engine.publish('room', payload(9), { from: 'mallory', idempotencyKey: 'k' }), { epoch: first.epoch, seq: 4, duplicate: false })
      t.strictSame(await engine.publish('room', payload(10), { from: 'mallory', idempotencyKey: 'k' }), { epoch: first.epoch, seq: 4, duplicate: true },
        'the same key: the first offset, nothing published')
      const expected = [
        { channel: 'room', epoch: first.epoch, seq: 1, data: payload(1), from },
        { channel: 'room', epoch: first.epoch, seq: 2, data: payload(2) },
        { channel: 'room', epoch: first.epoch, seq: 3, data: '{"from":"forged"}', from: 'bob' },
        { channel: 'room', epoch: first.epoch, seq: 4, data: payload(9), from: 'mallory' }
      ]
      t.strictSame((await engine.readHistory('room', { epoch: first.epoch, seq: 0 })).messages, expected, 'history keeps from, and only on client publishes')
      await eventually(() => received.length >= 4, 5000)
      await sleep(100)
      t.strictSame(received, expected, 'live messages carry the same from')
    })

    await t.test('instances share channels: a publish on one is live on another, in order', { skip: options.multiInstance ? false : 'one instance only' }, async (t) => {
      const { engine: first, makePeer } = await setup(t)
      if (makePeer === undefined) {
        t.fail('a multi-instance engine needs makePeer')
        return
      }
      const second = await makePeer()
      t.teardown(async () => { await second.close() })
      const onFirst = collect(first)
      const onSecond = collect(second)
      await second.listen('shared')

      const one = await first.publish('shared', payload(1))
      await eventually(() => onSecond.length >= 1, 5000)
      t.strictSame(onSecond, [{ channel: 'shared', epoch: one.epoch, seq: 1, data: payload(1) }], 'published on one, live on the other')
      t.strictSame(await second.readHistory('shared'), { epoch: one.epoch, seq: 1, recovered: true, messages: [] }, 'one history')
      t.strictSame(await second.publish('shared', payload(2)), { epoch: one.epoch, seq: 2, duplicate: false }, 'one seq')

      const sent = new Map<number, string>()
      const epochs = new Set<string>()
      await Promise.all(Array.from({ length: 200 }, async (_, i) => {
        const data = JSON.stringify({ i, text: `message ${i}\nwith a newline` })
        const result = await first.publish('shared', data)
        epochs.add(result.epoch)
        sent.set(result.seq, data)
      }))
      t.strictSame([...epochs], [one.epoch], 'one epoch throughout')
      t.strictSame([...sent.keys()].sort((x, y) => x - y), Array.from({ length: 200 }, (_, i) => i + 3), 'seqs 3..202')
      await eventually(() => onSecond.length >= 202, 10_000)
      await sleep(100)
      t.equal(onSecond.length, 202, 'each delivered once')
      t.strictSame(onSecond.map((message) => message.seq), Array.from({ length: 202 }, (_, i) => i + 1), 'in order, no gap')
      const mismatched = onSecond.slice(2).filter((message) =>
        message.channel !== 'shared' || message.epoch !== one.epoch || message.data !== sent.get(message.seq))
      t.strictSame(mismatched, [], 'each carries the data published under its seq')
      t.strictSame(onFirst, [], 'the instance not listening receives nothing')
    })
  })
}
