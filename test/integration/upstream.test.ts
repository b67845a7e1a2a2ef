import t from 'tap'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { requestTicket, startGateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'
import { consumeInbound } from '../../examples/inbound-consumer.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const admin = new Redis(redis.url)
t.teardown(async () => { await admin.quit() })

const a = await startGateway(t, { REDIS_URL: redis.url })
const b = await startGateway(t, { REDIS_URL: redis.url })

async function session (gateway: typeof a, sessionId: string): Promise<TestClient> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await userToken('alice', sessionId))}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  return client
}

await t.test('send is appended to <prefix>inbound with its identity, then acked', async (t) => {
  const client = await session(a, 's1')
  const connectionId = client.frames[0]!.connectionId
  client.send({ type: 'send', id: 'm1', data: { text: 'hi' } })
  t.same(await client.frame(1), { type: 'ack', id: 'm1' })
  const entries = await admin.xrange('rtgw:inbound', '-', '+')
  t.equal(entries.length, 1)
  t.same(entries[0]![1], ['userId', 'alice', 'sessionId', 's1', 'connectionId', connectionId, 'id', 'm1', 'data', '{"text":"hi"}'])
  client.close()
})

await t.test('the same id from the same session is acked again, not appended again — even on another instance', async (t) => {
  const before = await admin.xlen('rtgw:inbound')
  const first = await session(a, 's2')
  first.send({ type: 'send', id: 7, data: 1 })
  t.same(await first.frame(1), { type: 'ack', id: 7 })
  first.send({ type: 'send', id: 7, data: 1 })
  t.same(await first.frame(2), { type: 'ack', id: 7 })
  const retry = await session(b, 's2')
  retry.send({ type: 'send', id: 7, data: 1 })
  t.same(await retry.frame(1), { type: 'ack', id: 7 })
  const otherSession = await session(b, 's3')
  otherSession.send({ type: 'send', id: 7, data: 1 })
  t.same(await otherSession.frame(1), { type: 'ack', id: 7 })
  t.equal(await admin.xlen('rtgw:inbound'), before + 2, 'one entry per session')
  for (const client of [first, retry, otherSession]) client.close()
})

await t.test('send without id is BAD_MESSAGE', async (t) => {
  const client = await session(a, 's4')
  client.send({ type: 'send', data: 1 })
  t.match(await client.frame(1), { type: 'error', code: 'BAD_MESSAGE' })
  client.close()
})

await t.test('the example consumer reads with a consumer group and acknowledges', async (t) => {
  const consumed: Array<Record<string, string>> = []
  const handled = await consumeInbound({
    redisUrl: redis.url,
    group: 'backend',
    consumer: 'worker-1',
    maxMessages: 3,
    blockMs: 100,
    handle: async (message) => { consumed.push(message) }
  })
  t.equal(handled, 3)
  t.same(consumed.map((message) => [message.sessionId, message.id]), [['s1', 'm1'], ['s2', '7'], ['s3', '7']])
  const pending = await admin.xpending('rtgw:inbound', 'backend') as [number, ...unknown[]]
  t.equal(pending[0], 0, 'every message acknowledged')
})
