/**
 * Lifecycle events (SPEC §12) on two gateways sharing one real Redis: every event the
 * ws layer writes, with its exact fields, in `<prefix>events`; the drain's 1012
 * disconnects written before the engine closes; nothing at all when LIFECYCLE_EVENTS
 * is unset; only the listed events when it names a subset; the boot error.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, testConfig, type Gateway } from '../helpers/gateway.js'
import { userToken } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'


/** An event without its `ts` (checked on its own: the clock's). */
const withoutTs = ({ ts, ...rest }: Record<string, string>): Record<string, string> => { void ts; return rest }
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const admin = new Redis(redis.url)
t.teardown(async () => { await admin.quit() })

/** Every entry of `<prefix>events`, oldest first, as field → value. */
async function events (prefix: string): Promise<Array<Record<string, string>>> {
  const entries = await admin.xrange(`${prefix}events`, '-', '+')
  return entries.map(([, flat]) => Object.fromEntries(Array.from({ length: flat.length / 2 }, (_, index) => [flat[2 * index]!, flat[2 * index + 1]!])))
}

async function connect (gateway: Gateway, sub: string, sessionId: string): Promise<{ client: TestClient, connectionId: string }> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await userToken(sub, sessionId))}`)
  const established = await client.frame(0)
  if (established.type !== 'session_established') throw new Error(`no session: ${JSON.stringify(established)}`)
  return { client, connectionId: String(established.connectionId) }
}

async function counted (gateway: Gateway, event: string, outcome: string): Promise<number> {
  const metric = await gateway.app.metrics.lifecycleEvents.get()
  return metric.values.find((value) => value.labels.event === event && value.labels.outcome === outcome)?.value ?? 0
}

const ALL = 'connect,disconnect,subscribe,unsubscribe,join,leave'

await t.test('connect, subscribe, unsubscribe and disconnect, with exact fields, from two instances', async (t) => {
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'all:', LIFECYCLE_EVENTS: ALL }
  const a = await startGateway(t, env)
  const b = await startGateway(t, env)
  t.not(a.app.lifecycle.instanceId, b.app.lifecycle.instanceId, 'one instance id per process')
  const before = Date.now()

  const alice = await connect(a, 'alice', 's1')
  alice.client.send({ type: 'subscribe', channel: 'user:alice', id: 1 })
  t.match(await alice.client.frame(1), { type: 'subscribed', channel: 'user:alice', id: 1 })
  alice.client.send({ type: 'subscribe', channel: 'user:bob', id: 2 })
  t.match(await alice.client.frame(2), { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 2 }, 'a refused subscribe')
  alice.client.send({ type: 'unsubscribe', channel: 'session:nope', id: 3 })
  t.match(await alice.client.frame(3), { type: 'unsubscribed', channel: 'session:nope', id: 3 }, 'an unsubscribe of nothing')
  alice.client.send({ type: 'unsubscribe', channel: 'user:alice', id: 4 })
  t.match(await alice.client.frame(4), { type: 'unsubscribed', channel: 'user:alice', id: 4 })
  alice.client.socket.close(4000, 'bye')
  await alice.client.closed

  const bob = await connect(b, 'bob', 's2')
  bob.client.close()
  await bob.client.closed

  await eventually(async () => (await events('all:')).length === 6)
  const written = await events('all:')
  const after = Date.now()
  for (const entry of written) {
    const ts = Number(entry.ts)
    t.ok(ts >= before && ts <= after, `ts ${entry.ts} is the event's epoch ms`)
  }
  const alices = { userId: 'alice', sessionId: 's1', connectionId: alice.connectionId, instanceId: a.app.lifecycle.instanceId }
  const bobs = { userId: 'bob', sessionId: 's2', connectionId: bob.connectionId, instanceId: b.app.lifecycle.instanceId }
  t.strictSame(written.map(withoutTs), [
    { event: 'connect', ...alices },
    { event: 'subscribe', ...alices, channel: 'user:alice' },
    { event: 'unsubscribe', ...alices, channel: 'user:alice' },
    { event: 'disconnect', ...alices, code: '4000', reason: 'bye' },
    { event: 'connect', ...bobs },
    { event: 'disconnect', ...bobs, code: '1005', reason: '' }
  ], 'a refused subscribe and an unsubscribe of nothing write nothing')
  t.strictSame(Object.keys(written[0]!), ['event', 'userId', 'sessionId', 'connectionId', 'instanceId', 'ts'], 'field order')
  t.equal(await counted(a, 'connect', 'written'), 1)
  t.equal(await counted(a, 'subscribe', 'written'), 1)
  t.equal(await counted(a, 'disconnect', 'written'), 1)
  t.equal(await counted(b, 'disconnect', 'written'), 1)
  t.equal(await counted(a, 'connect', 'failed'), 0)
})

await t.test('the drain writes each disconnect with 1012 SERVER_RESTART before the engine closes', async (t) => {
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'drain:', LIFECYCLE_EVENTS: 'disconnect', SHUTDOWN_GRACE_MS: '1000' }
  const draining = await startGateway(t, env)
  const clients = [await connect(draining, 'alice', 's1'), await connect(draining, 'bob', 's2'), await connect(draining, 'carol', 's3')]
  t.teardown(() => { for (const { client } of clients) client.socket.terminate() })
  await draining.app.close()
  for (const { client } of clients) t.strictSame(await client.closed, { code: 1012, reason: 'SERVER_RESTART' })
  const written = await events('drain:')
  t.strictSame(written.map(withoutTs).sort((x, y) => x.userId!.localeCompare(y.userId!)), clients.map(({ connectionId }, index) => ({
    event: 'disconnect',
    userId: ['alice', 'bob', 'carol'][index],
    sessionId: `s${index + 1}`,
    connectionId,
    instanceId: draining.app.lifecycle.instanceId,
    code: '1012',
    reason: 'SERVER_RESTART'
  })), 'all three, although the engine closed right after the drain')
})

await t.test('LIFECYCLE_EVENTS unset: nothing is written, the stream does not exist', async (t) => {
  const off = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'off:' })
  const { client } = await connect(off, 'alice', 's1')
  client.send({ type: 'subscribe', channel: 'user:alice', id: 1 })
  t.match(await client.frame(1), { type: 'subscribed', id: 1 })
  client.close()
  await client.closed
  await eventually(() => off.app.hub.size === 0)
  await off.app.lifecycle.settled()
  t.equal(await admin.exists('off:events'), 0)
  t.equal(await counted(off, 'connect', 'written') + await counted(off, 'connect', 'dropped') + await counted(off, 'connect', 'failed'), 0, 'not even counted')
})

await t.test('a subset: only the listed events are written', async (t) => {
  const some = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'some:', LIFECYCLE_EVENTS: ' subscribe , disconnect ' })
  const { client, connectionId } = await connect(some, 'alice', 's1')
  client.send({ type: 'subscribe', channel: 'user:alice', id: 1 })
  t.match(await client.frame(1), { type: 'subscribed', id: 1 })
  client.send({ type: 'unsubscribe', channel: 'user:alice', id: 2 })
  t.match(await client.frame(2), { type: 'unsubscribed', id: 2 })
  client.close()
  await client.closed
  await eventually(async () => (await events('some:')).length === 2)
  await some.app.lifecycle.settled()
  const who = { userId: 'alice', sessionId: 's1', connectionId, instanceId: some.app.lifecycle.instanceId }
  t.strictSame((await events('some:')).map(withoutTs), [
    { event: 'subscribe', ...who, channel: 'user:alice' },
    { event: 'disconnect', ...who, code: '1005', reason: '' }
  ])
})

await t.test('an unknown event name stops the boot with one line naming it', async (t) => {
  t.throws(() => testConfig({ LIFECYCLE_EVENTS: 'connect,joined' }), {
    name: 'ConfigError',
    message: 'Invalid configuration: LIFECYCLE_EVENTS entry "joined" is not one of connect, disconnect, subscribe, unsubscribe, join, leave'
  })
  t.throws(() => testConfig({ EVENTS_MAX_LENGTH: '10' }), { name: 'ConfigError', message: /^Invalid configuration: EVENTS_MAX_LENGTH must be >= 1000/ })
  t.strictSame([...testConfig({ LIFECYCLE_EVENTS: ALL }).lifecycleEvents], ALL.split(','))
  t.strictSame([...testConfig({ LIFECYCLE_EVENTS: '' }).lifecycleEvents], [], 'empty: none')
  t.equal(testConfig().eventsMaxLength, 100000)
})
