import t from 'tap'
import { Redis } from 'ioredis'
import { DEFAULT_RELAY_SETTINGS, MemoryEngine } from '../../../src/server/engine/memory-engine.js'
import { RedisEngine } from '../../../src/server/engine/redis-engine.js'
import { EngineUnavailableError, type ChannelMessage, type EngineLogger } from '../../../src/server/engine/engine.js'
import { GatewayMetrics } from '../../../src/server/metrics/gateway-metrics.js'
import { TicketService, hashTicket } from '../../../src/server/tickets/ticket-service.js'
import { Revocations } from '../../../src/server/tickets/revocations.js'
import { RedisServer, freePort } from '../../helpers/redis-server.js'
import { eventually } from '../../helpers/gateway.js'
import { engineContract } from './contract.js'
import { RELAY_TEST_SETTINGS, relayContract } from './relay-contract.js'
import { historyEventsContract } from './history-events-contract.js'
import { presenceContract } from './presence-contract.js'

const silent: EngineLogger = { info () {}, warn () {}, error () {} }

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const admin = new Redis(redis.url, { lazyConnect: true })
await admin.connect()
t.teardown(async () => { await admin.quit() })

let engines = 0
function redisEngine (url = redis.url, keyPrefix = `t${++engines}:`): RedisEngine {
  return new RedisEngine({ url, keyPrefix, commandTimeoutMs: 1000, logger: silent, relay: DEFAULT_RELAY_SETTINGS })
}

await engineContract(t, 'memory', async () => ({ engine: new MemoryEngine() }))

await engineContract(t, 'redis', async () => {
  const keyPrefix = `contract${++engines}:`
  const engine = redisEngine(redis.url, keyPrefix)
  await eventually(() => engine.isReady())
  return { engine, inspectKeys: async () => await admin.keys(`${keyPrefix}*`) }
})

await t.test('redis: tickets are stored only as their SHA-256 hash, under the prefix, with a TTL', async (t) => {
  const engine = redisEngine(redis.url, 'rtgw-test:')
  t.teardown(async () => { await engine.close() })
  await eventually(() => engine.isReady())
  const tickets = new TicketService({ engine, ttlSeconds: 30, metrics: new GatewayMetrics(), revocations: new Revocations({ engine }) })

  const issued = await tickets.issue({ sub: 'alice', sessionId: 's1' })
  const key = `rtgw-test:ticket:${hashTicket(issued.ticket)}`
  t.match(hashTicket(issued.ticket), /^[A-Za-z0-9_-]{43}$/, 'the hash is SHA-256 in base64url')
  t.strictSame(await admin.keys('rtgw-test:*'), [key], 'one key: prefix + ticket: + hash')

  const ttl = await admin.ttl(key)
  t.ok(ttl >= 29 && ttl <= 90, `the key expires: TTL covers the ticket's 30 s and is bounded (${ttl} s)`)

  // Nowhere in the whole database does the raw ticket appear.
  const allKeys = await admin.keys('*')
  t.ok(allKeys.length >= 1)
  for (const each of allKeys) {
    t.notOk(each.includes(issued.ticket), `key ${each} does not contain the ticket`)
    if (await admin.type(each) !== 'string') continue
    const value = await admin.get(each)
    t.notOk(value?.includes(issued.ticket), `value of ${each} does not contain the ticket`)
  }
  const stored = JSON.parse((await admin.get(key))!) as Record<string, unknown>
  t.equal(stored.sub, 'alice')

  const consumed = await tickets.consume(issued.ticket)
  t.equal(consumed.ok, true)
  t.match(consumed, { ok: true, record: { sub: 'alice', sessionId: 's1' } })
  t.equal(await admin.exists(key), 0, 'consuming deletes the key')
  t.same(await tickets.consume(issued.ticket), { ok: false, code: 'WS_TICKET_INVALID', reason: 'invalid' })
})

await t.test('redis: an unreachable server means not ready, and commands fail fast with EngineUnavailableError', async (t) => {
  const engine = redisEngine(`redis://127.0.0.1:${await freePort()}`)
  t.teardown(async () => { await engine.close() })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal(engine.isReady(), false)
  const started = Date.now()
  const errors = await Promise.all([
    engine.storeTicket(hashTicket('x'), { sub: 'a', sessionId: 's', issuedAt: 0, expiresAt: 1, channels: [] }, 10).then(() => undefined, (err: unknown) => err),
    engine.consumeTicket(hashTicket('x')).then(() => undefined, (err: unknown) => err)
  ])
  t.ok(Date.now() - started < 1000, 'no hang')
  t.ok(errors[0] instanceof EngineUnavailableError, 'storeTicket rejects with EngineUnavailableError')
  t.ok(errors[1] instanceof EngineUnavailableError, 'consumeTicket rejects with EngineUnavailableError')
})

await t.test('redis: readiness follows the server down and back up without a new engine', async (t) => {
  const flaky = await RedisServer.start()
  t.teardown(async () => { await flaky.stop() })
  const engine = redisEngine(flaky.url)
  t.teardown(async () => { await engine.close() })
  await eventually(() => engine.isReady())
  const changes: boolean[] = []
  engine.onReadyChange((ready) => { changes.push(ready) })

  await flaky.kill()
  await eventually(() => !engine.isReady(), 5000)
  t.strictSame(changes, [false])
  const error = await engine.storeTicket(hashTicket('y'), { sub: 'a', sessionId: 's', issuedAt: 0, expiresAt: 1, channels: [] }, 10).then(() => undefined, (err: unknown) => err)
  t.ok(error instanceof EngineUnavailableError, 'store while down rejects with EngineUnavailableError')

  await flaky.start()
  await eventually(() => engine.isReady())
  t.strictSame(changes, [false, true])
  const hash = hashTicket('z')
  const record = { sub: 'a', sessionId: 's', issuedAt: 1, expiresAt: 2, channels: [] }
  await engine.storeTicket(hash, record, 10)
  t.strictSame(await engine.consumeTicket(hash), record, 'serves again after the reconnect')
})

await relayContract(t, 'memory', async (relay) => ({ engine: new MemoryEngine({ relay }) }), { multiInstance: false })

await relayContract(t, 'redis', async (relay) => {
  const keyPrefix = `relay${++engines}:`
  const start = async (): Promise<RedisEngine> => {
    const engine = new RedisEngine({ url: redis.url, keyPrefix, commandTimeoutMs: 1000, logger: silent, relay })
    await eventually(() => engine.isReady())
    return engine
  }
  return { engine: await start(), makePeer: start }
}, { multiInstance: true })

await t.test('redis relay: a channel lives in meta, history (a capped stream) and idem keys under its hash tag, all with a TTL', async (t) => {
  const engine = new RedisEngine({ url: redis.url, keyPrefix: 'relaykeys:', commandTimeoutMs: 1000, logger: silent, relay: RELAY_TEST_SETTINGS })
  t.teardown(async () => { await engine.close() })
  await eventually(() => engine.isReady())
  const base = 'relaykeys:{ch:room:1}'

  const results = []
  for (let n = 1; n <= 7; n++) results.push(await engine.publish('room:1', JSON.stringify({ n })))
  results.push(await engine.publish('room:1', '{"n":8}', { idempotencyKey: 'req-8' }))
  const epoch = results[0]!.epoch
  t.strictSame((await admin.keys('relaykeys:*')).sort(), [`${base}:history`, `${base}:idem:req-8`, `${base}:meta`], 'three keys')

  t.strictSame(await admin.hgetall(`${base}:meta`), { epoch, seq: '8' }, 'meta: epoch and last seq')
  t.equal(await admin.type(`${base}:history`), 'stream')
  t.equal(await admin.xlen(`${base}:history`), 5, 'the stream is capped at historySize')
  const entries = await admin.xrange(`${base}:history`, '-', '+')
  t.strictSame(entries.map(([id]) => id), ['4-0', '5-0', '6-0', '7-0', '8-0'], 'entry ids are the seqs')
  t.strictSame(entries[4]![1], ['d', '{"n":8}'])
  t.equal(await admin.get(`${base}:idem:req-8`), `${epoch}:8`, 'the idempotency key holds the offset')

  for (const key of [`${base}:meta`, `${base}:history`, `${base}:idem:req-8`]) {
    const ttl = await admin.pttl(key)
    t.ok(ttl > 0 && ttl <= 2000, `${key} expires within 2 s (${ttl} ms)`)
  }

  // A read of a channel never published to leaves only an expiring meta key.
  const quiet = await engine.readHistory('quiet')
  t.strictSame(await admin.keys('relaykeys:{ch:quiet}*'), ['relaykeys:{ch:quiet}:meta'])
  t.strictSame(await admin.hgetall('relaykeys:{ch:quiet}:meta'), { epoch: quiet.epoch, seq: '0' })
  const quietTtl = await admin.pttl('relaykeys:{ch:quiet}:meta')
  t.ok(quietTtl > 0 && quietTtl <= 2000, `the meta key of a read-only channel expires (${quietTtl} ms)`)
})

await t.test('redis relay: Redis restarted empty means a new epoch and an old since is not recovered; live resumes', async (t) => {
  const flaky = await RedisServer.start()
  t.teardown(async () => { await flaky.stop() })
  const engine = new RedisEngine({ url: flaky.url, keyPrefix: 'restart:', commandTimeoutMs: 1000, logger: silent, relay: RELAY_TEST_SETTINGS })
  t.teardown(async () => { await engine.close() })
  await eventually(() => engine.isReady())
  const received: ChannelMessage[] = []
  engine.onChannelMessage((message) => { received.push(message) })
  await engine.listen('room')

  await engine.publish('room', '{"n":1}')
  const before = await engine.publish('room', '{"n":2}')
  t.equal(before.seq, 2)
  await eventually(() => received.length >= 2, 5000)

  await flaky.kill()
  await eventually(() => !engine.isReady(), 5000)
  await flaky.start()
  await eventually(() => engine.isReady())

  const after = await engine.readHistory('room')
  t.not(after.epoch, before.epoch, 'a new epoch')
  t.strictSame(after, { epoch: after.epoch, seq: 0, recovered: true, messages: [] })
  t.strictSame(await engine.readHistory('room', { epoch: before.epoch, seq: 2 }),
    { epoch: after.epoch, seq: 0, recovered: false, messages: [] }, 'the old since is not recovered')
  t.strictSame(await engine.readHistory('room', { epoch: before.epoch, seq: 0 }),
    { epoch: after.epoch, seq: 0, recovered: false, messages: [] }, 'not even from the start of the old epoch')

  const next = await engine.publish('room', '{"n":3}')
  t.strictSame(next, { epoch: after.epoch, seq: 1, duplicate: false })
  await eventually(() => received.length >= 3, 5000)
  t.strictSame(received[2], { channel: 'room', epoch: after.epoch, seq: 1, data: '{"n":3}' }, 'the listened channel is live again')
})

await t.test('redis: while the control channel cannot be subscribed the engine stays not ready, and becomes ready once it can', async (t) => {
  // An ACL user with every key and command but no pub/sub channel: SUBSCRIBE is refused
  // (NOPERM) on a connection that is otherwise up, as a misconfigured managed Redis would.
  await admin.call('ACL', 'SETUSER', 'nochannels', 'reset', 'on', '>nochannels-secret', '~*', '+@all', 'resetchannels')
  t.teardown(async () => { await admin.call('ACL', 'DELUSER', 'nochannels') })
  const errors: Array<{ event?: unknown }> = []
  const logger: EngineLogger = { ...silent, error (obj) { errors.push(obj) } }
  const url = new URL(redis.url)
  url.username = 'nochannels'
  url.password = 'nochannels-secret'
  const engine = new RedisEngine({ url: url.href, keyPrefix: 'nocontrol:', commandTimeoutMs: 1000, logger, relay: DEFAULT_RELAY_SETTINGS })
  t.teardown(async () => { await engine.close() })
  const changes: boolean[] = []
  engine.onReadyChange((ready) => { changes.push(ready) })

  await eventually(() => errors.some((line) => line.event === 'engine.redis.control_subscribe_failed'))
  // Past the retry interval: the refusal was tried again and is still not readiness.
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(engine.isReady(), false, 'not ready while the control SUBSCRIBE is refused')
  t.strictSame(changes, [], 'never became ready')
  t.equal(errors.filter((line) => line.event === 'engine.redis.control_subscribe_failed').length, 1, 'the refusal is reported once, not on every retry')
  await t.rejects(engine.storeTicket('h', { sub: 'a', sessionId: 's', issuedAt: 1, expiresAt: 2, channels: [] }, 10), EngineUnavailableError)

  await admin.call('ACL', 'SETUSER', 'nochannels', 'allchannels')
  await eventually(() => engine.isReady(), 5000)
  t.strictSame(changes, [true], 'ready once the retried SUBSCRIBE succeeds')
  const heard: string[] = []
  engine.onControl((message) => { heard.push(message) })
  await engine.broadcastControl('{"probe":1}')
  await eventually(() => heard.length === 1, 5000)
  t.strictSame(heard, ['{"probe":1}'], 'and the control channel is heard')
})

await historyEventsContract(t, 'memory', async (relay) => new MemoryEngine({ relay }))

await historyEventsContract(t, 'redis', async (relay) => {
  const engine = new RedisEngine({ url: redis.url, keyPrefix: `events${++engines}:`, commandTimeoutMs: 1000, logger: silent, relay })
  await eventually(() => engine.isReady())
  return engine
})

await presenceContract(t, 'memory', async () => ({ engine: new MemoryEngine() }))

await presenceContract(t, 'redis', async () => {
  const keyPrefix = `presence${++engines}:`
  const start = async (): Promise<RedisEngine> => {
    const engine = redisEngine(redis.url, keyPrefix)
    await eventually(() => engine.isReady())
    return engine
  }
  return { engine: await start(), makePeer: start }
})
