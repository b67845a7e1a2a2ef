import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { requestTicket, startGateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { serviceToken } from '../helpers/relay.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

// A burst large enough for the batches of frames below; the payload limit is the default 64 KiB.
const gateway = await startGateway(t, { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000' })

/**
 * Bounds on time here are ~100x what the gateway needs: they catch a matcher or a
 * parser that blocks the event loop (the old claim matcher took ~10 s on one of
 * these patterns), not a slow machine.
 */
const PROMPT_MS = 100
/** A whole HTTP request (JWT check, routing) on a busy machine takes tens of ms already. */
const HTTP_PROMPT_MS = 1000

async function session (channels: string[], sub = 'mallory'): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub, sessionId: `${sub}-session`, channels })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  return client
}

/** The `index`-th frame and when it arrived (ms, performance.now()). */
async function timedFrame (client: TestClient, index: number): Promise<{ frame: Record<string, unknown>, at: number }> {
  const frame = await client.frame(index, 15_000)
  return { frame, at: performance.now() }
}

/** A bystander's ping round trip, the one before it warming the path up. */
async function pingRoundTrip (client: TestClient, index: number, id: string): Promise<{ frame: Record<string, unknown>, ms: number }> {
  const sentAt = performance.now()
  client.send({ type: 'ping', id })
  const { frame, at } = await timedFrame(client, index)
  return { frame, ms: at - sentAt }
}

/** `levels` nested arrays: `[[[]]]` for 3. */
function nested (levels: number): string {
  return '['.repeat(levels) + ']'.repeat(levels)
}

const dots = 't:' + '.'.repeat(196) + ':y'

await t.test('a claim pattern built to backtrack answers FORBIDDEN_CHANNEL at once and delays no one else', async (t) => {
  t.equal(dots.length, 200)
  const attacker = await session(['t:*.*.*.*.*.*:x'])
  const bystander = await session(['chat:*'], 'bob')
  t.same((await pingRoundTrip(bystander, 1, 'warm')).frame, { type: 'pong', id: 'warm' })

  const sentAt = performance.now()
  for (let index = 0; index < 5; index += 1) attacker.send({ type: 'subscribe', channel: dots, id: `dots-${index}` })
  const [forbidden, during] = await Promise.all([
    Promise.all([1, 2, 3, 4, 5].map(async (index) => await timedFrame(attacker, index))),
    pingRoundTrip(bystander, 2, 'during')
  ])
  t.same(forbidden.map(({ frame }) => frame), [0, 1, 2, 3, 4].map((index) => ({ type: 'error', code: 'FORBIDDEN_CHANNEL', id: `dots-${index}` })))
  const answeredMs = Math.max(...forbidden.map(({ at }) => at)) - sentAt
  t.ok(answeredMs < PROMPT_MS, `five refusals in ${answeredMs.toFixed(1)} ms`)
  t.same(during.frame, { type: 'pong', id: 'during' })
  t.ok(during.ms < PROMPT_MS, `the bystander's ping round trip meanwhile: ${during.ms.toFixed(1)} ms`)

  attacker.send({ type: 'ping', id: 'after' })
  t.same(await attacker.frame(6), { type: 'pong', id: 'after' }, 'the attacker stays connected')
})

await t.test('t:*-*-*-*:x grants a matching 200-character name and refuses a non-matching one promptly', async (t) => {
  const matching = 't:' + '-'.repeat(196) + ':x'
  const other = 't:' + '-'.repeat(196) + ':y'
  t.equal(matching.length, 200)
  const client = await session(['t:*-*-*-*:x'])
  const bystander = await session(['chat:*'], 'bob')
  t.same((await pingRoundTrip(bystander, 1, 'warm')).frame, { type: 'pong', id: 'warm' })

  const sentAt = performance.now()
  // Ten refusals: the old matcher spent ~30 ms on each.
  for (let index = 0; index < 10; index += 1) client.send({ type: 'subscribe', channel: other, id: `other-${index}` })
  const [refused, during] = await Promise.all([
    Promise.all(Array.from({ length: 10 }, async (_, index) => await timedFrame(client, index + 1))),
    pingRoundTrip(bystander, 2, 'during')
  ])
  t.same(refused.map(({ frame }) => frame), Array.from({ length: 10 }, (_, index) => ({ type: 'error', code: 'FORBIDDEN_CHANNEL', id: `other-${index}` })))
  const answeredMs = Math.max(...refused.map(({ at }) => at)) - sentAt
  t.ok(answeredMs < PROMPT_MS, `ten refusals in ${answeredMs.toFixed(1)} ms`)
  t.same(during.frame, { type: 'pong', id: 'during' })
  t.ok(during.ms < PROMPT_MS, `the bystander's ping round trip meanwhile: ${during.ms.toFixed(1)} ms`)

  client.send({ type: 'subscribe', channel: matching, id: 'match' })
  t.match(await client.frame(11), { type: 'subscribed', channel: matching, id: 'match', recovered: true })
})

await t.test('GET /v1/poll refuses the backtracking pattern with 403 FORBIDDEN_CHANNEL promptly', async (t) => {
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'mallory', sessionId: 'poll-session', channels: ['t:*.*.*.*.*.*:x'] })
  const poll = async (channel: string): Promise<{ status: number, body: unknown, traceId: string | null, ms: number }> => {
    const started = performance.now()
    const response = await fetch(`${gateway.baseUrl}/v1/poll?channel=${encodeURIComponent(channel)}`, { headers: { authorization: `Bearer ${token}` } })
    const body: unknown = await response.json()
    return { status: response.status, body, traceId: response.headers.get('x-request-id'), ms: performance.now() - started }
  }
  t.equal((await poll('user:bob')).status, 403, 'warm-up: another user\'s channel')
  const refused = await poll(dots)
  t.equal(refused.status, 403)
  t.same(refused.body, { error: 'FORBIDDEN', code: 'FORBIDDEN_CHANNEL', message: 'Not allowed on this channel', traceId: refused.traceId })
  t.ok(refused.ms < HTTP_PROMPT_MS, `answered in ${refused.ms.toFixed(1)} ms`)
})

await t.test('a frame nested deeper than 64 levels is BAD_MESSAGE with its id; the socket stays open', async (t) => {
  const client = await session(['chat:*'])
  const deep = { type: 'error', code: 'BAD_MESSAGE', message: 'JSON nested deeper than 64 levels' }
  client.send(`{"type":"send","id":"deep","data":${nested(65)}}`)
  t.same(await client.frame(1), { ...deep, id: 'deep' })
  client.send(`{"type":"ping","id":7,"extra":{"a":${nested(64)}}}`)
  t.same(await client.frame(2), { ...deep, id: 7 })
  client.send(`{"type":"send","data":${nested(65)}}`)
  t.same(await client.frame(3), deep, 'no id at the top level: none in the answer')
  // Within the 64 KiB frame limit, deep enough to overflow JSON.stringify (was INTERNAL_ERROR).
  client.send(`{"type":"send","id":"deeper","data":${nested(30_000)}}`)
  t.same(await client.frame(4), { ...deep, id: 'deeper' })

  client.send({ type: 'ping', id: 'still-open' })
  t.same(await client.frame(5), { type: 'pong', id: 'still-open' })
  client.send(`{"type":"send","id":"at-limit","data":${nested(64)}}`)
  t.same(await client.frame(6), { type: 'ack', id: 'at-limit' }, 'data nesting exactly 64 levels is accepted')
})

await t.test('POST /v1/publish: data nested 65 levels is 400 BAD_REQUEST, 64 levels is published', async (t) => {
  const token = await serviceToken('gateway:publish')
  const post = async (body: string): Promise<{ status: number, body: unknown, traceId: string | null }> => {
    const response = await fetch(`${gateway.baseUrl}/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body
    })
    return { status: response.status, body: await response.json() as unknown, traceId: response.headers.get('x-request-id') }
  }
  const tooDeep = { error: 'BAD_REQUEST', code: 'BAD_REQUEST', message: 'JSON body nested deeper than 64 levels' }

  for (const levels of [65, 400_000]) {
    const refused = await post(`{"channel":"chat:deep","data":${nested(levels)}}`)
    t.equal(refused.status, 400, `${levels} levels`)
    t.same(refused.body, { ...tooDeep, traceId: refused.traceId })
  }

  const subscriber = await session(['chat:*'])
  subscriber.send({ type: 'subscribe', channel: 'chat:deep', id: 's' })
  t.match(await subscriber.frame(1), { type: 'subscribed', channel: 'chat:deep', id: 's' })
  const published = await post(`{"channel":"chat:deep","data":${nested(64)}}`)
  t.equal(published.status, 200)
  t.match(published.body, { channel: 'chat:deep', offset: String })
  const message = await subscriber.frame(2)
  t.same(message, { type: 'message', channel: 'chat:deep', offset: (published.body as { offset: string }).offset, data: JSON.parse(nested(64)) as unknown }, 'delivered verbatim')
})

await t.test('the JSON body parser keeps Fastify\'s rules: empty, invalid and prototype-poisoning bodies are 400', async (t) => {
  const token = await serviceToken('gateway:publish')
  const cases: Array<[body: string, message: string]> = [
    ['', 'Body cannot be empty when content-type is set to \'application/json\''],
    ['{"channel":', 'Body is not valid JSON but content-type is set to \'application/json\''],
    ['{"channel":"chat:x","data":{"__proto__":{"admin":true}}}', 'Body is not valid JSON but content-type is set to \'application/json\''],
    ['{"channel":"chat:x","data":{"constructor":{"prototype":{"admin":true}}}}', 'Body is not valid JSON but content-type is set to \'application/json\'']
  ]
  for (const [body, message] of cases) {
    const response = await fetch(`${gateway.baseUrl}/v1/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' },
      body
    })
    t.equal(response.status, 400, JSON.stringify(body.slice(0, 40)))
    t.same(await response.json(), { error: 'BAD_REQUEST', code: 'BAD_REQUEST', message, traceId: response.headers.get('x-request-id') })
  }
})
