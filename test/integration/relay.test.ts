import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish, serviceToken } from '../helpers/relay.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const env = { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000' }
const a = await startGateway(t, env)
const b = await startGateway(t, env)

async function session (gateway: Gateway, channels: string[] = ['chat:*']): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  return client
}

/** Frames after the first `count` that match `type`. */
function framesOfType (client: TestClient, type: string): Array<Record<string, unknown>> {
  return client.frames.filter((frame) => frame.type === type)
}

await t.test('publish on instance A is received by a subscriber on instance B', async (t) => {
  const client = await session(b)
  client.send({ type: 'subscribe', channel: 'chat:lobby', id: 'sub1' })
  const subscribed = await client.frame(1)
  t.match(subscribed, { type: 'subscribed', channel: 'chat:lobby', id: 'sub1', recovered: true })
  t.match(subscribed.offset, /^[A-Za-z0-9_-]+:0$/)
  const published = await publish(a, { channel: 'chat:lobby', data: { text: 'hello', n: 1 } })
  t.equal(published.status, 200)
  t.equal(published.body.channel, 'chat:lobby')
  const message = await client.frame(2)
  t.same(message, { type: 'message', channel: 'chat:lobby', offset: published.body.offset, data: { text: 'hello', n: 1 } })
  client.close()
})

await t.test('1000 messages arrive in order with strictly increasing offsets, none lost or doubled', async (t) => {
  const client = await session(b)
  client.send({ type: 'subscribe', channel: 'chat:bulk' })
  await client.frame(1)
  const batch = Array.from({ length: 100 }, (_, index) => index)
  for (let round = 0; round < 10; round += 1) {
    const response = await publish(a, { messages: batch.map((index) => ({ channel: 'chat:bulk', data: round * 100 + index })) })
    t.equal(response.status, 200)
  }
  await client.frame(1001, 15_000)
  const messages = framesOfType(client, 'message')
  t.equal(messages.length, 1000)
  t.same(messages.map((message) => message.data), Array.from({ length: 1000 }, (_, index) => index))
  const seqs = messages.map((message) => Number(String(message.offset).split(':')[1]))
  t.ok(seqs.every((seq, index) => index === 0 || seq === seqs[index - 1]! + 1), 'offsets strictly increase by one')
  client.close()
})

await t.test('resume after a disconnect delivers exactly the missed messages, on the other instance', async (t) => {
  const first = await session(a)
  first.send({ type: 'subscribe', channel: 'chat:resume' })
  await first.frame(1)
  for (let index = 0; index < 5; index += 1) await publish(a, { channel: 'chat:resume', data: index })
  await first.frame(6)
  const lastOffset = framesOfType(first, 'message').at(-1)!.offset as string
  first.socket.terminate()
  for (let index = 5; index < 12; index += 1) await publish(b, { channel: 'chat:resume', data: index })

  const second = await session(b)
  second.send({ type: 'subscribe', channel: 'chat:resume', since: lastOffset, id: 'r' })
  t.match(await second.frame(1), { type: 'subscribed', channel: 'chat:resume', id: 'r', offset: lastOffset, recovered: true })
  await second.frame(8)
  await publish(a, { channel: 'chat:resume', data: 12 })
  await second.frame(9)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(framesOfType(second, 'message').map((message) => message.data), [5, 6, 7, 8, 9, 10, 11, 12], '0 lost, 0 duplicated, then live')
  second.close()
})

await t.test('since older than the retained history → recovered:false', async (t) => {
  const small = await startGateway(t, { ...env, HISTORY_SIZE: '3', REDIS_KEY_PREFIX: 'small:' })
  const first = await publish(small, { channel: 'chat:short', data: 0 })
  for (let index = 1; index < 6; index += 1) await publish(small, { channel: 'chat:short', data: index })
  const client = await session(small)
  client.send({ type: 'subscribe', channel: 'chat:short', since: first.body.offset })
  const subscribed = await client.frame(1)
  t.match(subscribed, { type: 'subscribed', channel: 'chat:short', recovered: false })
  t.match(subscribed.offset, /:6$/)
  client.send({ type: 'subscribe', channel: 'chat:other', since: 'nope0000:3' })
  t.match(await client.frame(2), { type: 'subscribed', channel: 'chat:other', recovered: false })
  client.close()
})

await t.test('since ahead of the head → recovered:false at the head, then every next live message', async (t) => {
  const first = await publish(a, { channel: 'chat:ahead', data: 1 })
  await publish(a, { channel: 'chat:ahead', data: 2 })
  const epoch = String(first.body.offset).split(':')[0]!
  const client = await session(b)
  client.send({ type: 'subscribe', channel: 'chat:ahead', since: `${epoch}:9`, id: 'ahead' })
  t.strictSame(await client.frame(1), { type: 'subscribed', channel: 'chat:ahead', id: 'ahead', offset: `${epoch}:2`, recovered: false })
  const third = await publish(a, { channel: 'chat:ahead', data: 3 })
  t.equal(third.body.offset, `${epoch}:3`)
  t.strictSame(await client.frame(2), { type: 'message', channel: 'chat:ahead', offset: `${epoch}:3`, data: 3 }, 'not skipped as already seen')
  client.close()
})

await t.test('GET /v1/poll with a since ahead of the head answers recovered:false at the head at once', async (t) => {
  const first = await publish(a, { channel: 'chat:poll-ahead', data: 1 })
  const epoch = String(first.body.offset).split(':')[0]!
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['chat:*'] })
  const started = Date.now()
  const response = await fetch(`${b.baseUrl}/v1/poll?channel=chat:poll-ahead&since=${epoch}:50&timeoutMs=20000`, { headers: { authorization: `Bearer ${token}` } })
  t.equal(response.status, 200)
  t.strictSame(await response.json(), { messages: [], offset: `${epoch}:1`, recovered: false })
  t.ok(Date.now() - started < 10_000, 'no waiting for the timeout')
  const next = await fetch(`${b.baseUrl}/v1/poll?channel=chat:poll-ahead&since=${epoch}:1&timeoutMs=0`, { headers: { authorization: `Bearer ${token}` } })
  t.strictSame(await next.json(), { messages: [], offset: `${epoch}:1`, recovered: true }, 'polling on from the offset it gave works')
})

await t.test('two subscribes back to back: both answered with the winner\'s position, its stream delivered once', async (t) => {
  for (let n = 1; n <= 3; n += 1) await publish(a, { channel: 'chat:twice', data: n })
  const { epoch: twice } = await b.app.engine.readHistory('chat:twice')
  const client = await session(b)
  client.send({ type: 'subscribe', channel: 'chat:twice', since: `${twice}:0`, id: 1 })
  client.send({ type: 'subscribe', channel: 'chat:twice', since: `${twice}:1`, id: 2 })
  await client.frame(4)
  await publish(a, { channel: 'chat:twice', data: 4 })
  await client.frame(5)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.strictSame(client.frames.slice(1), [
    { type: 'subscribed', channel: 'chat:twice', id: 1, offset: `${twice}:1`, recovered: true },
    { type: 'subscribed', channel: 'chat:twice', id: 2, offset: `${twice}:1`, recovered: true },
    { type: 'message', channel: 'chat:twice', offset: `${twice}:2`, data: 2 },
    { type: 'message', channel: 'chat:twice', offset: `${twice}:3`, data: 3 },
    { type: 'message', channel: 'chat:twice', offset: `${twice}:4`, data: 4 }
  ], 'the superseded subscribe is answered just before the winner; the replay follows the winner\'s since')

  client.send({ type: 'subscribe', channel: 'chat:thrice', id: 'x' })
  client.send({ type: 'subscribe', channel: 'chat:thrice' })
  client.send({ type: 'subscribe', channel: 'chat:thrice', id: 'z' })
  const { epoch: thrice } = await b.app.engine.readHistory('chat:thrice')
  await client.frame(7)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.strictSame(client.frames.slice(6), [
    { type: 'subscribed', channel: 'chat:thrice', id: 'x', offset: `${thrice}:0`, recovered: true },
    { type: 'subscribed', channel: 'chat:thrice', id: 'z', offset: `${thrice}:0`, recovered: true }
  ], 'each superseded one with an id, in request order (one without an id asks for no answer)')
  client.close()
})

await t.test('subscribe immediately followed by unsubscribe: the subscribe is answered unsubscribed, and nothing is delivered', async (t) => {
  // Earlier tests' sockets are gone, so the count below is this channel's alone.
  await eventually(() => b.app.relay.channelCount === 0)
  const client = await session(b)
  client.send({ type: 'subscribe', channel: 'chat:brief', id: 's' })
  client.send({ type: 'unsubscribe', channel: 'chat:brief', id: 'u' })
  await client.frame(2)
  await publish(a, { channel: 'chat:brief', data: 'unseen' })
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.strictSame(client.frames.slice(1), [
    { type: 'unsubscribed', channel: 'chat:brief', id: 's' },
    { type: 'unsubscribed', channel: 'chat:brief', id: 'u' }
  ])
  t.equal(b.app.relay.channelCount, 0, 'the instance no longer holds it')

  client.send({ type: 'subscribe', channel: 'chat:brief', id: 'a1' })
  client.send({ type: 'subscribe', channel: 'chat:brief', id: 'a2' })
  client.send({ type: 'unsubscribe', channel: 'chat:brief', id: 'u2' })
  await client.frame(5)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.strictSame(client.frames.slice(3), [
    { type: 'unsubscribed', channel: 'chat:brief', id: 'a1' },
    { type: 'unsubscribed', channel: 'chat:brief', id: 'a2' },
    { type: 'unsubscribed', channel: 'chat:brief', id: 'u2' }
  ], 'a superseded one too')

  client.send({ type: 'subscribe', channel: 'chat:brief', id: 'again' })
  t.match(await client.frame(6), { type: 'subscribed', channel: 'chat:brief', id: 'again', recovered: true })
  client.send({ type: 'unsubscribe', channel: 'chat:brief', id: 'u3' })
  t.strictSame(await client.frame(7), { type: 'unsubscribed', channel: 'chat:brief', id: 'u3' }, 'an answered subscribe is not answered again')
  client.close()
})

await t.test('channel authorization', async (t) => {
  const client = await session(a, ['news:*'])
  const cases = [['user:alice', 'subscribed'], ['session:s1', 'subscribed'], ['news:today', 'subscribed'], ['user:bob', 'error'], ['session:s2', 'error'], ['chat:lobby', 'error'], ['newsy', 'error']]
  cases.forEach(([channel], index) => { client.send({ type: 'subscribe', channel, id: index }) })
  const replies = await Promise.all(cases.map(async (_, index) => await client.frame(index + 1)))
  for (const [index, [channel, type]] of cases.entries()) {
    const reply = replies.find((frame) => frame.id === index)
    t.equal(reply?.type, type, `${channel} → ${type}`)
    if (type === 'error') t.equal(reply?.code, 'FORBIDDEN_CHANNEL')
  }
  client.send({ type: 'unsubscribe', channel: 'news:today', id: 'u' })
  t.same(await client.frame(cases.length + 1), { type: 'unsubscribed', channel: 'news:today', id: 'u' })
  client.close()
})

await t.test('publish: auth, scope and validation errors with §3 bodies', async (t) => {
  const missing = await fetch(`${a.baseUrl}/v1/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"channel":"x","data":1}' })
  t.equal(missing.status, 401)
  t.match(await missing.json(), { error: 'UNAUTHORIZED', code: 'MISSING_TOKEN' })
  const wrongScope = await publish(a, { channel: 'chat:x', data: 1 }, await serviceToken('gateway:disconnect'))
  t.equal(wrongScope.status, 403)
  t.match(wrongScope.body, { error: 'FORBIDDEN', code: 'INSUFFICIENT_SCOPE', traceId: String })
  const userTokenOnly = await publish(a, { channel: 'chat:x', data: 1 }, await userToken())
  t.equal(userTokenOnly.status, 403)
  const badChannel = await publish(a, { channel: 'bad channel!', data: 1 })
  t.equal(badChannel.status, 400)
  t.equal(badChannel.body.code, 'BAD_REQUEST')
  const tooBig = await publish(a, { channel: 'chat:x', data: 'x'.repeat(70_000) })
  t.equal(tooBig.status, 413)
})

await t.test('idempotent publish: the same key returns the same offset and publishes once', async (t) => {
  const client = await session(b)
  client.send({ type: 'subscribe', channel: 'chat:idem' })
  await client.frame(1)
  const first = await publish(a, { channel: 'chat:idem', data: 'once', idempotencyKey: 'k1' })
  const again = await publish(b, { channel: 'chat:idem', data: 'once', idempotencyKey: 'k1' })
  t.equal(first.status, 200)
  t.same(again.body, first.body)
  const other = await publish(a, { channel: 'chat:idem', data: 'twice', idempotencyKey: 'k2' })
  t.not(other.body.offset, first.body.offset)
  await client.frame(3)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(framesOfType(client, 'message').map((message) => message.data), ['once', 'twice'])
  client.close()
})

await t.test('/v1 answers 503 REDIS_NOT_READY with Retry-After while Redis is down', async (t) => {
  const down = await startGateway(t, { REDIS_URL: 'redis://127.0.0.1:1' }, { waitForEngine: false })
  const response = await fetch(`${down.baseUrl}/v1/publish`, { method: 'POST', headers: { authorization: `Bearer ${await serviceToken()}`, 'content-type': 'application/json' }, body: '{"channel":"chat:x","data":1}' })
  t.equal(response.status, 503)
  t.match(response.headers.get('retry-after'), /^[1-3]$/, 'Retry-After 1 s plus jitter')
  t.match(await response.json(), { error: 'SERVICE_UNAVAILABLE', code: 'REDIS_NOT_READY' })
})

await t.test('a consumer that stops reading is closed with 1013 SLOW_CONSUMER; others keep receiving', async (t) => {
  const gateway = await startGateway(t, { ...env, WS_MAX_BUFFERED_BYTES: '65536', WS_MAX_PAYLOAD_BYTES: '65536' })
  const slow = await session(gateway)
  const healthy = await session(gateway)
  for (const client of [slow, healthy]) {
    client.send({ type: 'subscribe', channel: 'chat:firehose' })
    await client.frame(1)
  }
  // The slow client stops reading: the server's socket buffer fills, then its queue grows.
  const raw = (slow.socket as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  raw.pause()
  const payload = 'x'.repeat(50_000)
  for (let batch = 0; batch < 6; batch += 1) {
    const response = await publish(gateway, { messages: Array.from({ length: 15 }, () => ({ channel: 'chat:firehose', data: payload })) })
    t.equal(response.status, 200)
  }
  await healthy.frame(1 + 90, 15_000)
  t.equal(framesOfType(healthy, 'message').length, 90, 'the healthy client got every message')
  raw.resume()
  const closed = await slow.closed
  t.same(closed, { code: 1013, reason: 'SLOW_CONSUMER' })
})

await t.test('POST /v1/disconnect closes every socket of a user or a session on every instance with 4403', async (t) => {
  const disconnect = async (body: unknown, scope = 'gateway:disconnect'): Promise<Response> => await fetch(`${a.baseUrl}/v1/disconnect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await serviceToken(scope)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  const connect = async (gateway: Gateway, sub: string, sessionId: string): Promise<TestClient> => {
    const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await userToken(sub, sessionId))}`)
    t.teardown(() => { client.socket.terminate() })
    await client.frame(0)
    return client
  }
  const carolOnA = await connect(a, 'carol', 'c1')
  const carolOnB = await connect(b, 'carol', 'c2')
  const daveOnB = await connect(b, 'dave', 'd1')
  const daveOtherSession = await connect(a, 'dave', 'd2')

  t.equal((await disconnect({ userId: 'carol' }, 'gateway:publish')).status, 403, 'needs the gateway:disconnect scope')
  t.equal((await disconnect({ userId: 'carol', sessionId: 'x' })).status, 400, 'one of userId or sessionId')

  const started = Date.now()
  const response = await disconnect({ userId: 'carol' })
  t.equal(response.status, 200)
  t.same(await response.json(), { requested: true })
  t.same(await carolOnA.closed, { code: 4403, reason: 'SESSION_REVOKED' })
  t.same(await carolOnB.closed, { code: 4403, reason: 'SESSION_REVOKED' })
  t.ok(Date.now() - started < 1000, 'within a second')

  t.equal((await disconnect({ sessionId: 'd1' })).status, 200)
  t.same(await daveOnB.closed, { code: 4403, reason: 'SESSION_REVOKED' })
  daveOtherSession.send({ type: 'ping', id: 'alive' })
  t.same(await daveOtherSession.frame(1), { type: 'pong', id: 'alive' }, "dave's other session is untouched")
  daveOtherSession.close()
})

await t.test('GET /v1/poll: long-polls history, returns early on publish, times out empty', async (t) => {
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['chat:*'] })
  const poll = async (gateway: Gateway, query: string, bearer = token): Promise<{ status: number, body: Record<string, unknown>, ms: number }> => {
    const started = Date.now()
    const response = await fetch(`${gateway.baseUrl}/v1/poll?${query}`, { headers: { authorization: `Bearer ${bearer}` } })
    return { status: response.status, body: await response.json() as Record<string, unknown>, ms: Date.now() - started }
  }
  const position = await poll(a, 'channel=chat:poll')
  t.equal(position.status, 200)
  t.same(position.body.messages, [])
  t.equal(position.body.recovered, true)
  const since = position.body.offset as string

  // Waits on instance B; the publish goes through instance A.
  const pending = poll(b, `channel=chat:poll&since=${since}&timeoutMs=10000`)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const published = await publish(a, { channel: 'chat:poll', data: { n: 1 } })
  const answered = await pending
  t.equal(answered.status, 200)
  t.ok(answered.ms < 5000, `returned as soon as the message arrived (${answered.ms} ms)`)
  t.same(answered.body.messages, [{ type: 'message', channel: 'chat:poll', offset: published.body.offset, data: { n: 1 } }])
  t.equal(answered.body.offset, published.body.offset)

  const empty = await poll(a, `channel=chat:poll&since=${String(published.body.offset)}&timeoutMs=300`)
  t.equal(empty.status, 200)
  t.same(empty.body.messages, [])
  t.equal(empty.body.offset, published.body.offset)
  t.ok(empty.ms >= 250, 'waited for the timeout')

  const forbidden = await poll(a, 'channel=user:bob')
  t.equal(forbidden.status, 403)
  t.match(forbidden.body, { error: 'FORBIDDEN', code: 'FORBIDDEN_CHANNEL' })
  const tooLong = await poll(a, 'channel=chat:poll&timeoutMs=60000')
  t.equal(tooLong.status, 400)
  const noSession = await poll(a, 'channel=chat:poll', await mintDevToken({ secret: TEST_SECRET, sub: 'alice' }))
  t.equal(noSession.body.code, 'MISSING_SESSION')
})

await t.test('the per-connection channel cap answers TOO_MANY_CHANNELS and keeps the socket open', async (t) => {
  const capped = await startGateway(t, { ...env, WS_MAX_CHANNELS_PER_CONNECTION: '2' })
  const client = await session(capped)
  for (const [index, channel] of ['chat:1', 'chat:2', 'chat:3'].entries()) client.send({ type: 'subscribe', channel, id: index })
  const replies = await Promise.all([1, 2, 3].map(async (index) => await client.frame(index)))
  // The refusal is immediate; the two subscriptions answer after their history read.
  const byId = replies.map((reply) => [reply.id, reply.type, reply.code]).sort((x, y) => Number(x[0]) - Number(y[0]))
  t.same(byId, [[0, 'subscribed', undefined], [1, 'subscribed', undefined], [2, 'error', 'TOO_MANY_CHANNELS']])
  client.send({ type: 'subscribe', channel: 'chat:1', id: 'again' })
  t.match(await client.frame(4), { type: 'subscribed', id: 'again' }, 're-subscribing a joined channel is not a new one')
  client.send({ type: 'unsubscribe', channel: 'chat:2' })
  await client.frame(5)
  client.send({ type: 'subscribe', channel: 'chat:3', id: 'now' })
  t.match(await client.frame(6), { type: 'subscribed', channel: 'chat:3', id: 'now' })
  client.close()
})

await t.test('the embedded engine serves the same relay on one instance', async (t) => {
  const solo = await startGateway(t, { WS_MESSAGE_BURST: '1000' })
  t.equal(solo.app.engine.kind, 'memory')
  const client = await session(solo)
  client.send({ type: 'subscribe', channel: 'chat:solo', id: 1 })
  t.match(await client.frame(1), { type: 'subscribed', id: 1, recovered: true })
  const published = await publish(solo, { channel: 'chat:solo', data: 'hi' })
  t.same(await client.frame(2), { type: 'message', channel: 'chat:solo', offset: published.body.offset, data: 'hi' })
  client.send({ type: 'send', id: 'up', data: 1 })
  t.same(await client.frame(3), { type: 'ack', id: 'up' })
  client.close()
})
