/**
 * Client publish (SPEC §9) on two gateways sharing one real Redis: the `publish`
 * claim, the `publish` frame through the same publisher as POST /v1/publish, and the
 * gateway's `from` on every delivery (live, replay, long-poll).
 */
import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish as backendPublish, serviceToken } from '../helpers/relay.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const env = { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000' }
const a = await startGateway(t, env)
const b = await startGateway(t, env)

interface Grants { readonly channels?: string[], readonly publish?: string[] }

async function jwt (sub: string, grants: Grants): Promise<string> {
  return await mintDevToken({ secret: TEST_SECRET, sub, sessionId: `${sub}-session`, ...grants })
}

async function session (gateway: Gateway, sub: string, grants: Grants): Promise<TestClient> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await jwt(sub, grants))}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  return client
}

const ofType = (client: TestClient, type: string): Array<Record<string, unknown>> => client.frames.filter((frame) => frame.type === type)

async function quiet (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 200))
}

await t.test('publish allowed by the claim: published with its offset, delivered on the other instance with from', async (t) => {
  const alice = await session(a, 'alice', { channels: ['room:*'], publish: ['room:*'] })
  const bob = await session(b, 'bob', { channels: ['room:*'] })
  bob.send({ type: 'subscribe', channel: 'room:one', id: 's' })
  t.match(await bob.frame(1), { type: 'subscribed', channel: 'room:one', id: 's' })

  alice.send({ type: 'publish', channel: 'room:one', id: 'p1', data: { text: 'hi' } })
  const published = await alice.frame(1)
  t.match(published, { type: 'published', channel: 'room:one', id: 'p1' })
  t.match(published.offset, /^[A-Za-z0-9_-]+:1$/)
  t.strictSame(Object.keys(published).sort(), ['channel', 'id', 'offset', 'type'])
  t.strictSame(await bob.frame(2), { type: 'message', channel: 'room:one', offset: published.offset, from: 'alice', data: { text: 'hi' } })

  // A backend publish on the same channel carries no from.
  const backend = await backendPublish(a, { channel: 'room:one', data: 'from the backend' })
  t.strictSame(await bob.frame(3), { type: 'message', channel: 'room:one', offset: backend.body.offset, data: 'from the backend' })
  await quiet()
  t.equal(alice.frames.length, 2, 'the publisher is not subscribed: it gets only its answer')
})

await t.test('publish refused: FORBIDDEN_CHANNEL with the id, nothing appended; subscribe rights and own channels grant no publish', async (t) => {
  const alice = await session(a, 'alice', { channels: ['news:*', 'room:*'], publish: ['room:open'] })
  const watcher = await session(b, 'bob', { channels: ['news:*', 'room:*'] })
  watcher.send({ type: 'subscribe', channel: 'news:today' })
  watcher.send({ type: 'subscribe', channel: 'room:closed' })
  await watcher.frame(2)
  alice.send({ type: 'publish', channel: 'news:today', id: 1, data: 'x' })
  alice.send({ type: 'publish', channel: 'room:closed', id: 2, data: 'x' })
  alice.send({ type: 'publish', channel: 'user:alice', id: 3, data: 'x' })
  alice.send({ type: 'publish', channel: 'room:open', id: 4, data: 'ok' })
  await alice.frame(4)
  t.strictSame(alice.frames.slice(1, 4), [
    { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 1 },
    { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 2 },
    { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 3 }
  ])
  t.match(alice.frames[4], { type: 'published', channel: 'room:open', id: 4 })
  for (const channel of ['news:today', 'room:closed', 'user:alice']) {
    t.equal((await a.app.engine.readHistory(channel)).seq, 0, `nothing appended to ${channel}`)
  }
  await quiet()
  t.equal(ofType(watcher, 'message').length, 0, 'no subscriber got anything')
})

await t.test('from is the gateway\'s: a from in the data stays data, a from in the frame is ignored', async (t) => {
  const alice = await session(a, 'alice', { publish: ['room:*'], channels: ['room:*'] })
  alice.send({ type: 'subscribe', channel: 'room:forge' })
  await alice.frame(1)
  alice.send({ type: 'publish', channel: 'room:forge', id: 'f', from: 'mallory', data: { from: 'mallory', text: 'trust me' } })
  await alice.frame(3)
  const [published, message] = [ofType(alice, 'published')[0]!, ofType(alice, 'message')[0]!]
  t.strictSame(message, { type: 'message', channel: 'room:forge', offset: published.offset, from: 'alice', data: { from: 'mallory', text: 'trust me' } })
})

await t.test('idempotencyKey: the same key gives the same offset and one message; keys are per user', async (t) => {
  const alice = await session(a, 'alice', { publish: ['room:*'] })
  const carol = await session(b, 'carol', { publish: ['room:*'] })
  const bob = await session(b, 'bob', { channels: ['room:*'] })
  bob.send({ type: 'subscribe', channel: 'room:idem' })
  await bob.frame(1)
  alice.send({ type: 'publish', channel: 'room:idem', id: 1, idempotencyKey: 'k', data: 'first' })
  const first = await alice.frame(1)
  alice.send({ type: 'publish', channel: 'room:idem', id: 2, idempotencyKey: 'k', data: 'retry' })
  t.strictSame(await alice.frame(2), { type: 'published', channel: 'room:idem', id: 2, offset: first.offset }, 'the first offset again')
  // Another instance, another connection of the same user: still the same message.
  const again = await session(b, 'alice', { publish: ['room:*'] })
  again.send({ type: 'publish', channel: 'room:idem', id: 3, idempotencyKey: 'k', data: 'retry elsewhere' })
  t.strictSame(await again.frame(1), { type: 'published', channel: 'room:idem', id: 3, offset: first.offset })
  carol.send({ type: 'publish', channel: 'room:idem', id: 4, idempotencyKey: 'k', data: 'carol' })
  const carols = await carol.frame(1)
  t.not(carols.offset, first.offset, 'another user\'s key is another message')
  await bob.frame(3)
  await quiet()
  t.strictSame(ofType(bob, 'message').map((message) => [message.from, message.data]), [['alice', 'first'], ['carol', 'carol']])
})

await t.test('from survives history: replay with since on the other instance, and GET /v1/poll', async (t) => {
  const alice = await session(a, 'alice', { publish: ['room:*'], channels: ['room:*'] })
  alice.send({ type: 'publish', channel: 'room:history', id: 1, data: 1 })
  const start = await alice.frame(1)
  alice.send({ type: 'publish', channel: 'room:history', id: 2, data: 2 })
  await alice.frame(2)
  await backendPublish(a, { channel: 'room:history', data: 3 })
  alice.send({ type: 'publish', channel: 'room:history', id: 4, data: { n: 4 } })
  await alice.frame(3)

  const [epoch] = String(start.offset).split(':')
  const since = `${epoch!}:0`
  const bob = await session(b, 'bob', { channels: ['room:*'] })
  bob.send({ type: 'subscribe', channel: 'room:history', since, id: 'r' })
  await bob.frame(5)
  const expected = [['alice', 1], ['alice', 2], [undefined, 3], ['alice', { n: 4 }]]
  t.strictSame(ofType(bob, 'message').map((message) => [message.from, message.data]), expected, 'replayed with from, none on the backend\'s')

  const response = await fetch(`${b.baseUrl}/v1/poll?channel=room:history&since=${since}&timeoutMs=0`, {
    headers: { authorization: `Bearer ${await jwt('bob', { channels: ['room:*'] })}` }
  })
  t.equal(response.status, 200)
  const body = await response.json() as { messages: Array<Record<string, unknown>>, recovered: boolean }
  t.equal(body.recovered, true)
  t.strictSame(body.messages.map((message) => [message.from, message.data]), expected, 'the poll shows the same from')
  t.strictSame(body.messages[2], { type: 'message', channel: 'room:history', offset: `${epoch!}:3`, data: 3 }, 'no from key at all on a backend message')

  const history = await fetch(`${a.baseUrl}/v1/history?channel=room:history`, { headers: { authorization: `Bearer ${await serviceToken('gateway:history')}` } })
  t.equal(history.status, 200)
  const page = await history.json() as { messages: Array<Record<string, unknown>> }
  t.strictSame(page.messages.map((message) => [message.from, message.data]), expected, 'GET /v1/history shows the same from')
  t.strictSame(page.messages[2], { type: 'message', channel: 'room:history', offset: `${epoch!}:3`, data: 3 }, 'and none on the backend message')
})

await t.test('malformed publish frames are BAD_MESSAGE, with the id when there is one; the socket stays open', async (t) => {
  const alice = await session(a, 'alice', { publish: ['room:*'] })
  const bad = [
    { type: 'publish', id: 'no-channel', data: 1 },
    { type: 'publish', id: 'no-data', channel: 'room:x' },
    { type: 'publish', id: 'bad-name', channel: 'room x', data: 1 },
    { type: 'publish', id: 'long-name', channel: `room:${'x'.repeat(200)}`, data: 1 },
    { type: 'publish', id: 'empty-key', channel: 'room:x', data: 1, idempotencyKey: '' },
    { type: 'publish', id: 'number-key', channel: 'room:x', data: 1, idempotencyKey: 7 },
    { type: 'publish', id: 'long-key', channel: 'room:x', data: 1, idempotencyKey: 'k'.repeat(201) },
    { type: 'publish', id: { not: 'an id' }, channel: 'room:x', data: 1 }
  ]
  for (const frame of bad) alice.send(frame)
  await alice.frame(bad.length)
  t.strictSame(alice.frames.slice(1).map((frame) => [frame.type, frame.code, frame.id]),
    [...bad.slice(0, -1).map((frame) => ['error', 'BAD_MESSAGE', frame.id]), ['error', 'BAD_MESSAGE', undefined]])
  t.equal((await a.app.engine.readHistory('room:x')).seq, 0, 'nothing published')
  alice.send({ type: 'ping', id: 'alive' })
  t.strictSame(await alice.frame(bad.length + 1), { type: 'pong', id: 'alive' })
})

await t.test('a message too large for clients is MESSAGE_TOO_LARGE_FOR_CLIENTS, nothing published', async (t) => {
  const alice = await session(a, 'alice', { publish: ['room:*'] })
  // The frame fits WS_MAX_PAYLOAD_BYTES (65536); the delivered frame around it would not.
  alice.send({ type: 'publish', channel: 'room:big', id: 'big', data: 'x'.repeat(65_300) })
  t.match(await alice.frame(1), { type: 'error', code: 'MESSAGE_TOO_LARGE_FOR_CLIENTS', id: 'big' })
  t.equal((await a.app.engine.readHistory('room:big')).seq, 0)
})

await t.test('publishes count against the per-connection message rate: a flood closes 4429', async (t) => {
  const limited = await startGateway(t, { REDIS_URL: redis.url, WS_MESSAGE_BURST: '5', WS_MESSAGE_RATE_PER_SECOND: '1' })
  const alice = await session(limited, 'alice', { publish: ['room:*'] })
  for (let n = 0; n < 10; n += 1) alice.send({ type: 'publish', channel: 'room:flood', data: n })
  const closed = await alice.closed
  t.strictSame(closed, { code: 4429, reason: 'RATE_LIMITED' })
  await eventually(async () => (await limited.app.engine.readHistory('room:flood')).seq >= 4)
  t.ok((await limited.app.engine.readHistory('room:flood')).seq <= 5, 'at most the burst was published')
})

await t.test('Redis down: publish answers REDIS_NOT_READY with its id and the socket stays open', async (t) => {
  const flaky = await RedisServer.start()
  t.teardown(async () => { await flaky.stop() })
  const gateway = await startGateway(t, { REDIS_URL: flaky.url })
  const alice = await session(gateway, 'alice', { publish: ['room:*'] })
  await flaky.kill()
  await eventually(() => !gateway.app.engine.isReady(), 5000)
  alice.send({ type: 'publish', channel: 'room:down', id: 'p', data: 1 })
  t.strictSame(await alice.frame(1), { type: 'error', code: 'REDIS_NOT_READY', id: 'p' })
  alice.send({ type: 'ping', id: 'still' })
  t.strictSame(await alice.frame(2), { type: 'pong', id: 'still' })
})

await t.test('rtgw_client_publishes_total counts every publish frame by result', async (t) => {
  // A gateway of its own: its counters start at zero, every result is exposed from boot.
  const c = await startGateway(t, { ...env, REDIS_KEY_PREFIX: 'client-publish-metrics:', WS_MAX_PAYLOAD_BYTES: '1024' })
  const counts = async (): Promise<Record<string, number>> => {
    const text = await (await fetch(`${c.baseUrl}/metrics`)).text()
    return Object.fromEntries([...text.matchAll(/^rtgw_client_publishes_total\{result="([a-z_]+)"\} (\d+)$/gm)].map((match) => [match[1], Number(match[2])]))
  }
  t.strictSame(await counts(), { published: 0, forbidden: 0, too_large: 0, unavailable: 0, overloaded: 0 }, 'all results at zero before any publish')

  const carol = await session(c, 'carol', { channels: ['room:*'], publish: ['room:*'] })
  carol.send({ type: 'publish', channel: 'room:metrics', id: 'ok1', data: 1 })
  carol.send({ type: 'publish', channel: 'room:metrics', id: 'ok2', data: 2 })
  carol.send({ type: 'publish', channel: 'other:metrics', id: 'no', data: 3 })
  carol.send({ type: 'publish', channel: 'room:metrics', id: 'big', data: 'x'.repeat(900) })
  await carol.frame(4)
  // Refusals answer at once, publishes after Redis: by id, not by order.
  const answers = Object.fromEntries(carol.frames.slice(1).map((frame) => [String(frame.id), frame.type === 'error' ? frame.code : frame.type]))
  t.strictSame(answers, { ok1: 'published', ok2: 'published', no: 'FORBIDDEN_CHANNEL', big: 'MESSAGE_TOO_LARGE_FOR_CLIENTS' })
  t.strictSame(await counts(), { published: 2, forbidden: 1, too_large: 1, unavailable: 0, overloaded: 0 })
})
