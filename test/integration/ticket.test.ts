import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET, tokenWithoutSession, userToken } from '../helpers/tokens.js'
import { codes } from '../../src/protocol/codes.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

// Each group of gateways gets its own key prefix, so rate-limit counters never leak between groups.
const gateway = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'tickets:' })

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const TICKET = /^[A-Za-z0-9_-]{43}$/

interface Answer { status: number, text: string, body: Record<string, unknown>, headers: Headers }

async function post (gw: Gateway, options: { authorization?: string, requestId?: string, path?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (options.authorization !== undefined) headers.authorization = options.authorization
  if (options.requestId !== undefined) headers['x-request-id'] = options.requestId
  const response = await fetch(`${gw.baseUrl}${options.path ?? '/ws-ticket'}`, { method: 'POST', headers })
  const text = await response.text()
  return { status: response.status, text, body: JSON.parse(text) as Record<string, unknown>, headers: response.headers }
}

async function bearer (gw: Gateway, token: string, requestId?: string): Promise<Answer> {
  return await post(gw, { authorization: `Bearer ${token}`, requestId })
}

/** SPEC §3: exactly `{ error, code, message, traceId }`, traceId being the x-request-id header. */
function assertError (t: Test, answer: Answer, status: number, error: string, code: keyof typeof codes, message?: string): void {
  t.equal(answer.status, status, `status ${status} (${answer.text})`)
  const traceId = answer.headers.get('x-request-id')
  t.ok(traceId !== null && traceId !== '', 'x-request-id is present')
  t.strictSame(Object.keys(answer.body).sort(), ['code', 'error', 'message', 'traceId'], 'exactly the error body fields')
  t.strictSame(answer.body, { error, code, message: message ?? codes[code].message, traceId })
}

function assertSuccess (t: Test, answer: Answer, before: number, ttlSeconds = 30): void {
  t.equal(answer.status, 200, answer.text)
  t.match(answer.headers.get('content-type'), /^application\/json/)
  t.strictSame(Object.keys(answer.body).sort(), ['expiresAt', 'ticket', 'ttlSeconds'])
  t.match(answer.body.ticket, TICKET, 'ticket: 43 base64url characters (256 bits)')
  t.equal(answer.body.ttlSeconds, ttlSeconds)
  const expiresAt = answer.body.expiresAt as string
  t.equal(new Date(expiresAt).toISOString(), expiresAt, 'expiresAt is ISO-8601')
  const expected = before + ttlSeconds * 1000
  t.ok(Math.abs(Date.parse(expiresAt) - expected) < 2000, `expiresAt ≈ now + TTL (off by ${Date.parse(expiresAt) - expected} ms)`)
}

async function signed (claims: Record<string, unknown>, configure: (jwt: SignJWT) => SignJWT, secret = TEST_SECRET, alg = 'HS256'): Promise<string> {
  return await configure(new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' })).sign(new TextEncoder().encode(secret))
}

function base64url (value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

await t.test('200: a fresh single-use ticket with its expiry', async (t) => {
  const before = Date.now()
  const first = await bearer(gateway, await userToken())
  assertSuccess(t, first, before)
  const second = await bearer(gateway, await userToken())
  assertSuccess(t, second, before)
  t.not(first.body.ticket, second.body.ticket, 'every request gets a new ticket')

  const client = new TestClient(`${gateway.wsUrl}?ticket=${first.body.ticket as string}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: 'alice', sessionId: 's1' })
  client.close()
})

await t.test('x-request-id', async (t) => {
  await t.test('generated (UUID) when absent, different per request', async (t) => {
    const first = await bearer(gateway, await userToken())
    const second = await post(gateway)
    t.match(first.headers.get('x-request-id'), UUID)
    t.match(second.headers.get('x-request-id'), UUID)
    t.not(first.headers.get('x-request-id'), second.headers.get('x-request-id'))
    t.equal(second.body.traceId, second.headers.get('x-request-id'))
  })

  await t.test('a plain client id is honoured, on success and in error bodies', async (t) => {
    const ok = await bearer(gateway, await userToken(), 'abc-123')
    t.equal(ok.status, 200)
    t.equal(ok.headers.get('x-request-id'), 'abc-123')
    const failed = await post(gateway, { requestId: 'abc-123' })
    assertError(t, failed, 401, 'UNAUTHORIZED', 'MISSING_TOKEN')
    t.equal(failed.headers.get('x-request-id'), 'abc-123')
    t.equal(failed.body.traceId, 'abc-123')
  })

  await t.test('an id with bad characters or too long is replaced', async (t) => {
    for (const requestId of ['has space', 'semi;colon', '<script>alert(1)</script>', 'quote"d', 'a'.repeat(500)]) {
      const answer = await post(gateway, { requestId })
      const returned = answer.headers.get('x-request-id')
      t.match(returned, UUID, `${requestId.slice(0, 30)} → a generated id`)
      t.equal(answer.body.traceId, returned)
      t.notOk(answer.text.includes(requestId), 'the rejected id is not echoed')
    }
  })
})

await t.test('401 MISSING_TOKEN', async (t) => {
  assertError(t, await post(gateway), 401, 'UNAUTHORIZED', 'MISSING_TOKEN')
  for (const authorization of [`Basic ${Buffer.from('alice:pw').toString('base64')}`, 'Bearer', 'Bearer ', await userToken()]) {
    const answer = await post(gateway, { authorization })
    t.equal(answer.status, 401, `${authorization.slice(0, 12)}… is not a Bearer header`)
    t.equal(answer.body.code, 'MISSING_TOKEN')
    t.equal(answer.body.error, 'UNAUTHORIZED')
    t.equal(typeof answer.body.message, 'string')
    t.equal(answer.body.traceId, answer.headers.get('x-request-id'))
  }
})

await t.test('401 INVALID_TOKEN', async (t) => {
  const nowSeconds = Math.floor(Date.now() / 1000)
  const cases: Record<string, string> = {
    'signed with another secret': await userToken('alice', 's1', { secret: 'another-secret-of-at-least-thirty-two-chars' }),
    'garbage string': 'garbage',
    'three garbage segments': 'aaa.bbb.ccc',
    'alg none': `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'alice', sessionId: 's1', exp: nowSeconds + 3600 })}.`,
    'alg HS512 with the right secret (not allowed)': await signed({ sessionId: 's1' }, (jwt) => jwt.setSubject('alice').setExpirationTime('1h'), TEST_SECRET, 'HS512'),
    'tampered payload': await (async () => {
      const [header, , signature] = (await userToken('alice')).split('.')
      return `${header!}.${base64url({ sub: 'mallory', sessionId: 's1', exp: nowSeconds + 3600 })}.${signature!}`
    })()
  }
  for (const [name, token] of Object.entries(cases)) {
    await t.test(name, async (t) => {
      assertError(t, await bearer(gateway, token), 401, 'UNAUTHORIZED', 'INVALID_TOKEN')
    })
  }
  await t.test('no subject', async (t) => {
    const token = await signed({ sessionId: 's1' }, (jwt) => jwt.setExpirationTime('1h'))
    const answer = await bearer(gateway, token)
    t.equal(answer.status, 401)
    t.equal(answer.body.code, 'INVALID_TOKEN')
    t.equal(answer.body.error, 'UNAUTHORIZED')
  })
})

await t.test('401 TOKEN_EXPIRED', async (t) => {
  const nowSeconds = Math.floor(Date.now() / 1000)
  const token = await signed({ sessionId: 's1' }, (jwt) => jwt.setSubject('alice').setIssuedAt(nowSeconds - 3600).setExpirationTime(nowSeconds - 120))
  assertError(t, await bearer(gateway, token), 401, 'UNAUTHORIZED', 'TOKEN_EXPIRED')
})

await t.test('401 MISSING_SESSION', async (t) => {
  assertError(t, await bearer(gateway, await tokenWithoutSession()), 401, 'UNAUTHORIZED', 'MISSING_SESSION')
  const emptySession = await userToken('alice', '')
  assertError(t, await bearer(gateway, emptySession), 401, 'UNAUTHORIZED', 'MISSING_SESSION')
})

await t.test('a `sid` claim is accepted instead of sessionId', async (t) => {
  const before = Date.now()
  const answer = await bearer(gateway, await userToken('bob', 'sid-session', { sessionClaim: 'sid' }))
  assertSuccess(t, answer, before)
  const client = new TestClient(`${gateway.wsUrl}?ticket=${answer.body.ticket as string}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: 'bob', sessionId: 'sid-session' })
  client.close()
})

await t.test('JWT_ISSUER and JWT_AUDIENCE are enforced when configured', async (t) => {
  const strict = await startGateway(t, {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: 'strict:',
    JWT_ISSUER: 'https://issuer.example.com',
    JWT_AUDIENCE: 'realtime-gateway'
  })
  const right = { issuer: 'https://issuer.example.com', audience: 'realtime-gateway' }
  assertSuccess(t, await bearer(strict, await userToken('alice', 's1', right)), Date.now())
  assertError(t, await bearer(strict, await userToken('alice', 's1', { ...right, issuer: 'https://evil.example.com' })), 401, 'UNAUTHORIZED', 'INVALID_TOKEN')
  assertError(t, await bearer(strict, await userToken('alice', 's1', { ...right, audience: 'another-service' })), 401, 'UNAUTHORIZED', 'INVALID_TOKEN')
  assertError(t, await bearer(strict, await userToken('alice', 's1', { audience: right.audience })), 401, 'UNAUTHORIZED', 'INVALID_TOKEN')
  assertError(t, await bearer(strict, await userToken('alice', 's1', { issuer: right.issuer })), 401, 'UNAUTHORIZED', 'INVALID_TOKEN')
  // The unconfigured gateway does not care about either claim.
  t.equal((await bearer(gateway, await userToken('alice', 's1', { issuer: 'https://evil.example.com' }))).status, 200)
})

await t.test('429 RATE_LIMITED per user, shared across instances', async (t) => {
  const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'per-user:', TICKET_RATE_LIMIT_PER_USER: '3' }
  const [a, b] = [await startGateway(t, env), await startGateway(t, env)]
  const carol = await userToken('carol', 'c1')
  t.equal((await bearer(a, carol)).status, 200)
  t.equal((await bearer(b, carol)).status, 200)
  t.equal((await bearer(a, carol)).status, 200)

  const limited = await bearer(b, carol)
  assertError(t, limited, 429, 'TOO_MANY_REQUESTS', 'RATE_LIMITED', limited.body.message as string)
  t.equal(typeof limited.body.message, 'string')
  t.ok((limited.body.message as string).length > 0)
  const retryAfter = Number(limited.headers.get('retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 90, `Retry-After in [1, 90]: the window left plus jitter (${limited.headers.get("retry-after")})`)
  t.equal((await bearer(a, carol)).status, 429, 'still limited on the first instance')
  t.equal((await bearer(a, await userToken('carol', 'another-session'))).status, 429, 'the limit is per user, not per session')

  t.equal((await bearer(a, await userToken('dave', 'd1'))).status, 200, 'another user is not limited')
  t.equal((await bearer(b, await userToken('dave', 'd1'))).status, 200)
  const issued = (await a.app.metrics.ticketsIssued.get()).values[0]!.value + (await b.app.metrics.ticketsIssued.get()).values[0]!.value
  t.equal(issued, 5, 'no ticket was issued to a limited request')
})

await t.test('per IP only failed authentications count: past the limit they get 429, valid users never do', async (t) => {
  const limited = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'per-ip:', AUTH_FAILURE_LIMIT_PER_IP: '5' })
  for (let i = 0; i < 3; i += 1) t.equal((await bearer(limited, await userToken(`valid-${i}`, 's'))).status, 200, 'successes are not counted')
  t.equal((await post(limited)).status, 401)
  t.equal((await bearer(limited, 'garbage')).status, 401)
  t.equal((await bearer(limited, await userToken('erin', 'e1'))).status, 200)
  t.equal((await post(limited)).status, 401)
  t.equal((await bearer(limited, 'garbage')).status, 401)
  t.equal((await bearer(limited, 'garbage')).status, 401, 'the fifth failure is still answered 401')

  const sixth = await post(limited)
  assertError(t, sixth, 429, 'TOO_MANY_REQUESTS', 'RATE_LIMITED', sixth.body.message as string)
  t.ok(Number(sixth.headers.get('retry-after')) >= 1, 'Retry-After ≥ 1')
  t.equal((await bearer(limited, 'garbage')).status, 429, 'an invalid token past the limit')
  t.equal((await bearer(limited, await userToken('frank', 'f1'))).status, 200, 'a valid user behind the same IP is served')
  t.equal((await bearer(limited, await userToken('frank', 'f2'))).status, 200)
})

await t.test('200 garbage tokens from one IP with the shipped limits, then a valid user gets a ticket', async (t) => {
  const shipped = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'garbage:' })
  const statuses = new Map<number, number>()
  for (let i = 0; i < 200; i += 1) {
    const { status } = await bearer(shipped, `garbage.${i}.token`)
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }
  t.same([...statuses.keys()].sort(), [401, 429], 'garbage is refused, and limited once past the per-IP limit')
  t.equal(statuses.get(401), 60, 'AUTH_FAILURE_LIMIT_PER_IP defaults to 60 per window')
  t.equal((await bearer(shipped, await userToken('grace', 'g1'))).status, 200, 'the valid user is not locked out')
})

await t.test('Retry-After on 429 is jittered: 50 refusals do not all come back in the same second', async (t) => {
  const limited = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'jitter:', AUTH_FAILURE_LIMIT_PER_IP: '1' })
  t.equal((await bearer(limited, 'garbage')).status, 401)
  const values = new Set<string>()
  for (let i = 0; i < 50; i += 1) {
    const answer = await bearer(limited, 'garbage')
    t.equal(answer.status, 429)
    values.add(answer.headers.get('retry-after') ?? '')
  }
  t.ok(values.size > 1, `several distinct Retry-After values (${[...values].join(', ')})`)
  for (const value of values) t.ok(/^[1-9][0-9]*$/.test(value), `Retry-After ${value} is whole seconds ≥ 1`)
})

await t.test('TRUST_PROXY: X-Forwarded-For decides the client IP only when trusted', async (t) => {
  const forwarded = async (gw: Gateway, ip: string): Promise<number> => {
    const response = await fetch(`${gw.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: 'Bearer garbage', 'x-forwarded-for': ip } })
    await response.arrayBuffer()
    return response.status
  }
  const untrusted = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'untrusted:', AUTH_FAILURE_LIMIT_PER_IP: '2' })
  t.same([await forwarded(untrusted, '198.51.100.1'), await forwarded(untrusted, '198.51.100.2'), await forwarded(untrusted, '198.51.100.3')], [401, 401, 429],
    'default: the header is ignored, every request counts against the TCP peer')

  const trusted = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'trusted:', AUTH_FAILURE_LIMIT_PER_IP: '2', TRUST_PROXY: '127.0.0.1/8' })
  t.same([await forwarded(trusted, '198.51.100.1'), await forwarded(trusted, '198.51.100.1'), await forwarded(trusted, '198.51.100.1')], [401, 401, 429],
    'trusted: one forwarded client is limited')
  t.equal(await forwarded(trusted, '198.51.100.2'), 401, 'another forwarded client has its own count')

  const hops = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'hops:', AUTH_FAILURE_LIMIT_PER_IP: '1', TRUST_PROXY: '1' })
  t.same([await forwarded(hops, '203.0.113.9, 198.51.100.7'), await forwarded(hops, '203.0.113.10, 198.51.100.7')], [401, 429],
    'a hop count of 1 believes only the nearest proxy: the client is the last forwarded address')
})

await t.test('unknown routes: 404 error body, never echoing the query string', async (t) => {
  for (const [method, path] of [['GET', '/nope?ticket=secret'], ['POST', '/ws-ticket/extra?ticket=secret'], ['GET', '/ws-ticket?ticket=secret']] as const) {
    const response = await fetch(`${gateway.baseUrl}${path}`, { method })
    const text = await response.text()
    const answer: Answer = { status: response.status, text, body: JSON.parse(text) as Record<string, unknown>, headers: response.headers }
    assertError(t, answer, 404, 'NOT_FOUND', 'NOT_FOUND', 'Route not found')
    t.notOk(text.includes('secret'), `${method} ${path}: the body does not contain the query`)
  }
})
