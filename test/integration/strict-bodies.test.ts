import t, { type Test } from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { serviceToken } from '../helpers/relay.js'
import { userToken } from '../helpers/tokens.js'

/**
 * SPEC §3: unknown or misspelt fields are a 400 that names them, never a silent no-op
 * (a misspelt `idempotencyKey` used to publish twice; `{"userID":"x"}` answered 200 and
 * closed nothing). Each /v1 route, wrong spelling and right spelling.
 */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const gateway = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'strict:' })

interface Answer { status: number, body: Record<string, unknown>, headers: Headers }

async function post (path: string, body: unknown, scope: string): Promise<Answer> {
  const response = await fetch(`${gateway.baseUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await serviceToken(scope)}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

const publish = async (body: unknown): Promise<Answer> => await post('/v1/publish', body, 'gateway:publish')
const disconnect = async (body: unknown): Promise<Answer> => await post('/v1/disconnect', body, 'gateway:disconnect')

async function poll (query: string): Promise<Answer> {
  const response = await fetch(`${gateway.baseUrl}/v1/poll?${query}`, { headers: { authorization: `Bearer ${await userToken('alice', 's1')}` } })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

function assertBadRequest (t: Test, answer: Answer, message: string): void {
  t.equal(answer.status, 400, JSON.stringify(answer.body))
  t.strictSame(answer.body, { error: 'BAD_REQUEST', code: 'BAD_REQUEST', message, traceId: answer.headers.get('x-request-id') })
}

await t.test('POST /v1/publish', async (t) => {
  await t.test('a misspelt idempotencyKey is a 400 naming it; the right spelling dedupes', async (t) => {
    assertBadRequest(t, await publish({ channel: 'chat:a', data: 1, idempotency_key: 'k1' }), "body has unknown property 'idempotency_key'")
    const first = await publish({ channel: 'chat:a', data: 1, idempotencyKey: 'k1' })
    t.equal(first.status, 200)
    const again = await publish({ channel: 'chat:a', data: 1, idempotencyKey: 'k1' })
    t.strictSame(again.body, first.body, 'the same offset: published once')
  })

  await t.test('a misspelt field inside a batch names its place', async (t) => {
    assertBadRequest(t, await publish({ messages: [{ channel: 'chat:a', data: 1 }, { channel: 'chat:a', data: 2, idempotencykey: 'k2' }] }),
      "body/messages/1 has unknown property 'idempotencykey'")
    assertBadRequest(t, await publish({ messages: [{ channel: 'chat:a', data: 1 }], atomic: true }), "body has unknown property 'atomic'")
    const batch = await publish({ messages: [{ channel: 'chat:a', data: 1 }, { channel: 'chat:b', data: 2, idempotencyKey: 'k2' }] })
    t.equal(batch.status, 200)
    t.equal((batch.body.results as unknown[]).length, 2)
  })

  await t.test('a misspelt channel, or nothing at all, says what either form needs', async (t) => {
    assertBadRequest(t, await publish({ chanel: 'chat:a', data: 1 }), "body must have required property 'channel' or body must have required property 'messages'")
    assertBadRequest(t, await publish({}), "body must have required property 'channel' or body must have required property 'messages'")
    t.equal((await publish({ channel: 'chat:a', data: 1 })).status, 200)
  })
})

await t.test('POST /v1/disconnect', async (t) => {
  await t.test('a misspelt target is a 400 naming it, not a 200 that closes nothing', async (t) => {
    assertBadRequest(t, await disconnect({ userID: 'x' }), "body has unknown property 'userID'")
    assertBadRequest(t, await disconnect({ session_id: 'x' }), "body has unknown property 'session_id'")
    t.strictSame((await disconnect({ userId: 'x' })).body, { requested: true })
    t.strictSame((await disconnect({ sessionId: 'x' })).body, { requested: true })
  })

  await t.test('a misspelt revokeSeconds is a 400, never a disconnect without the ban', async (t) => {
    assertBadRequest(t, await disconnect({ userId: 'x', revokeSecond: 60 }), "body has unknown property 'revokeSecond'")
    assertBadRequest(t, await disconnect({ userId: 'x', revoke_seconds: 60 }), "body has unknown property 'revoke_seconds'")
    t.strictSame((await disconnect({ userId: 'x', revokeSeconds: 1 })).body, { requested: true })
  })

  await t.test('exactly one of userId or sessionId', async (t) => {
    assertBadRequest(t, await disconnect({ userId: 'x', sessionId: 'y' }), 'body must match exactly one schema in oneOf')
    assertBadRequest(t, await disconnect({}), "body must have required property 'userId' or body must have required property 'sessionId'")
    assertBadRequest(t, await disconnect({ revokeSeconds: 60 }), "body must have required property 'userId' or body must have required property 'sessionId'")
  })

  await t.test('revokeSeconds is a whole number of seconds from 1 to 86400', async (t) => {
    assertBadRequest(t, await disconnect({ userId: 'x', revokeSeconds: 0 }), 'body/revokeSeconds must be >= 1')
    assertBadRequest(t, await disconnect({ userId: 'x', revokeSeconds: 86401 }), 'body/revokeSeconds must be <= 86400')
    assertBadRequest(t, await disconnect({ userId: 'x', revokeSeconds: 1.5 }), 'body/revokeSeconds must be integer')
    t.strictSame((await disconnect({ sessionId: 'y', revokeSeconds: 86400 })).body, { requested: true })
  })
})

await t.test('GET /v1/poll', async (t) => {
  await t.test('an unknown parameter is a 400 naming it (a misspelt since would skip messages)', async (t) => {
    assertBadRequest(t, await poll('channel=user:alice&Since=abc:1'), "querystring has unknown property 'Since'")
    assertBadRequest(t, await poll('channel=user:alice&timeout=0'), "querystring has unknown property 'timeout'")
  })

  await t.test('parameters starting with _ (cache-busters) are ignored', async (t) => {
    const answer = await poll('channel=user:alice&_=1733000000000')
    t.equal(answer.status, 200, JSON.stringify(answer.body))
    t.equal(answer.body.recovered, true)
    t.equal((await poll('channel=user:alice&timeoutMs=0&_ts=1')).status, 200)
  })
})
