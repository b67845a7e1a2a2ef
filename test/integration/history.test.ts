/**
 * GET /v1/history (SPEC §10) on two gateways sharing one real Redis: the latest
 * `limit`, pages after `since`, the default and the maximum, recovered:false, the
 * scope, strict query parameters and the engine's 503.
 */
import t from 'tap'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { publish, serviceToken } from '../helpers/relay.js'
import { userToken } from '../helpers/tokens.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const env = { REDIS_URL: redis.url, HISTORY_SIZE: '1100' }
const a = await startGateway(t, env)
const b = await startGateway(t, env)
const historyToken = await serviceToken('gateway:history')

interface Answer { status: number, body: Record<string, unknown>, headers: Headers }

async function history (gateway: Gateway, query: string, token: string | null = historyToken): Promise<Answer> {
  const response = await fetch(`${gateway.baseUrl}/v1/history?${query}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

/** Publishes `count` messages `{ n }` (n from `first`) in batches of 100; returns their offsets. */
async function publishMany (gateway: Gateway, channel: string, count: number, first = 1): Promise<string[]> {
  const offsets: string[] = []
  for (let start = 0; start < count; start += 100) {
    const messages = Array.from({ length: Math.min(100, count - start) }, (_, index) => ({ channel, data: { n: first + start + index } }))
    const answer = await publish(gateway, { messages })
    if (answer.status !== 200) throw new Error(`publish failed: ${JSON.stringify(answer.body)}`)
    for (const result of answer.body.results as Array<{ offset: string }>) offsets.push(result.offset)
  }
  return offsets
}

const frame = (channel: string, offset: string, n: number): Record<string, unknown> => ({ type: 'message', channel, offset, data: { n } })
const frames = (channel: string, offsets: string[], from: number, to: number): Array<Record<string, unknown>> =>
  offsets.slice(from - 1, to).map((offset, index) => frame(channel, offset, from + index))

const room = await publishMany(a, 'room', 5)
const epoch = room[0]!.split(':')[0]!

await t.test('without since: the latest `limit` messages as §5 frames, oldest first, on another instance', async (t) => {
  const answer = await history(b, 'channel=room&limit=3')
  t.equal(answer.status, 200)
  t.strictSame(answer.body, { channel: 'room', messages: frames('room', room, 3, 5), offset: room[4], recovered: true })
  t.ok(answer.headers.get('x-request-id'), 'x-request-id')
})

await t.test('with since: at most `limit` after it; paging on with `offset` reaches the head', async (t) => {
  const first = await history(b, `channel=room&since=${room[0]}&limit=2`)
  t.strictSame(first.body, { channel: 'room', messages: frames('room', room, 2, 3), offset: room[2], recovered: true })
  const second = await history(a, `channel=room&since=${String(first.body.offset)}&limit=2`)
  t.strictSame(second.body, { channel: 'room', messages: frames('room', room, 4, 5), offset: room[4], recovered: true })
  const end = await history(b, `channel=room&since=${String(second.body.offset)}&limit=2`)
  t.strictSame(end.body, { channel: 'room', messages: [], offset: room[4], recovered: true }, 'at the head: nothing, the same offset')
})

await t.test('a fresh channel: no messages, its position, recovered', async (t) => {
  const answer = await history(a, 'channel=empty')
  t.equal(answer.status, 200)
  t.match(answer.body, { channel: 'empty', messages: [], offset: /^[A-Za-z0-9_-]{1,32}:0$/, recovered: true })
})

await t.test('recovered:false, no messages and the head for a since from another epoch or ahead of the head', async (t) => {
  for (const since of ['otherepoch:2', `${epoch}:9`]) {
    const answer = await history(b, `channel=room&since=${since}`)
    t.strictSame(answer.body, { channel: 'room', messages: [], offset: room[4], recovered: false }, since)
  }
})

await t.test('default 100, at most 1000; a since older than the retained history is not recovered', async (t) => {
  const big = await publishMany(a, 'big', 1105)
  const byDefault = await history(b, 'channel=big')
  t.equal((byDefault.body.messages as unknown[]).length, 100, 'default limit 100')
  t.strictSame(byDefault.body, { channel: 'big', messages: frames('big', big, 1006, 1105), offset: big[1104], recovered: true })
  const most = await history(b, 'channel=big&limit=1000')
  t.equal((most.body.messages as unknown[]).length, 1000)
  t.strictSame(most.body, { channel: 'big', messages: frames('big', big, 106, 1105), offset: big[1104], recovered: true })
  const over = await history(b, 'channel=big&limit=1001')
  t.equal(over.status, 400)
  t.match(over.body, { error: 'BAD_REQUEST', code: 'BAD_REQUEST', message: /limit/, traceId: String })
  // HISTORY_SIZE 1100: messages 6..1105 are retained, so a since of 4 has lost message 5.
  const lost = await history(a, `channel=big&since=${big[3]}&limit=10`)
  t.strictSame(lost.body, { channel: 'big', messages: [], offset: big[1104], recovered: false })
  const oldest = await history(a, `channel=big&since=${big[4]}&limit=2`)
  t.strictSame(oldest.body, { channel: 'big', messages: frames('big', big, 6, 7), offset: big[6], recovered: true }, 'the oldest retained since is recovered')
})

await t.test('the gateway:history scope is required', async (t) => {
  for (const [what, token] of [['a user token', await userToken()], ['another scope', await serviceToken('gateway:publish')]] as const) {
    const answer = await history(a, 'channel=room', token)
    t.equal(answer.status, 403, what)
    t.strictSame(answer.body, { error: 'FORBIDDEN', code: 'INSUFFICIENT_SCOPE', message: 'Token lacks the gateway:history scope', traceId: answer.headers.get('x-request-id') }, what)
  }
  const none = await history(a, 'channel=room', null)
  t.equal(none.status, 401)
  t.equal(none.body.code, 'MISSING_TOKEN')
})

await t.test('unknown or malformed query parameters are a 400, never a silent answer', async (t) => {
  for (const query of [`channel=room&sinse=${room[0]}`, 'channel=room&limit=0', 'channel=room&limit=ten', 'channel=room&since=nope', 'limit=3', 'channel=bad%20name']) {
    const answer = await history(a, query)
    t.equal(answer.status, 400, query)
    t.equal(answer.body.code, 'BAD_REQUEST', query)
  }
  const busted = await history(a, 'channel=room&limit=1&_=1700000000000')
  t.strictSame(busted.body, { channel: 'room', messages: frames('room', room, 5, 5), offset: room[4], recovered: true }, 'a cache-buster `_` is ignored')
})

await t.test('503 REDIS_NOT_READY with Retry-After while the engine cannot serve', async (t) => {
  const down = await startGateway(t, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, { waitForEngine: false })
  const answer = await history(down, 'channel=room')
  t.equal(answer.status, 503)
  t.equal(answer.body.code, 'REDIS_NOT_READY')
  t.ok(Number(answer.headers.get('retry-after')) >= 1, 'Retry-After')
})
