import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient, type ClosedEvent } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'
import { disconnect } from '../helpers/relay.js'
import { sleep } from '../helpers/async.js'

/**
 * POST /v1/disconnect with revokeSeconds (SPEC §3): sockets close 4403 everywhere, and
 * for that long the user or session gets 401 SESSION_REVOKED for tickets and 4403 for
 * any ticket it still holds, on every instance, also one started after the ban.
 */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const admin = new Redis(redis.url, { lazyConnect: true })
await admin.connect()
t.teardown(async () => { await admin.quit() })

const PREFIX = 'revocation:'
const env = { REDIS_URL: redis.url, REDIS_KEY_PREFIX: PREFIX }
const a = await startGateway(t, env)
const b = await startGateway(t, env)

const REVOKED_CLOSE: ClosedEvent = { code: 4403, reason: 'SESSION_REVOKED' }

interface Answer { status: number, body: Record<string, unknown>, headers: Headers }

async function ticketRequest (gw: Gateway, sub: string, sessionId: string): Promise<Answer> {
  const response = await fetch(`${gw.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await userToken(sub, sessionId)}` } })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

async function ticketOf (gw: Gateway, sub: string, sessionId: string): Promise<string> {
  const answer = await ticketRequest(gw, sub, sessionId)
  if (answer.status !== 200) throw new Error(`ticket refused: ${answer.status} ${JSON.stringify(answer.body)}`)
  return answer.body.ticket as string
}

function upgrade (t: Test, gw: Gateway, ticket: string): TestClient {
  const client = new TestClient(`${gw.wsUrl}?ticket=${ticket}`)
  t.teardown(() => { client.socket.terminate() })
  return client
}

/** An established session of `sub`/`sessionId` on `gw`. */
async function session (t: Test, gw: Gateway, sub: string, sessionId: string): Promise<TestClient> {
  const client = upgrade(t, gw, await ticketOf(gw, sub, sessionId))
  t.match(await client.frame(0), { type: 'session_established', userId: sub, sessionId })
  return client
}

function assertRevoked (t: Test, answer: Answer): void {
  t.equal(answer.status, 401)
  t.strictSame(answer.body, { error: 'UNAUTHORIZED', code: 'SESSION_REVOKED', message: 'Session was revoked', traceId: answer.headers.get('x-request-id') })
  t.equal(answer.headers.get('cache-control'), 'no-store')
}

/** SPEC §4 shape of a refused upgrade: one error frame, then the close. */
async function assertRefusedUpgrade (t: Test, client: TestClient): Promise<void> {
  t.strictSame(await client.frame(0), { type: 'error', code: 'SESSION_REVOKED' })
  t.strictSame(await client.closed, REVOKED_CLOSE)
  t.equal(client.frames.length, 1, 'nothing but the error frame')
}

async function assertWorks (t: Test, gw: Gateway, sub: string, sessionId: string): Promise<void> {
  const client = await session(t, gw, sub, sessionId)
  client.close()
}

await t.test('a user ban on A: sockets on A and B close 4403, tickets are refused on B, an older ticket is refused at the upgrade on A', async (t) => {
  const onB = await session(t, b, 'mallory', 'm1')
  const onA = await session(t, a, 'mallory', 'm2')
  const bystander = await session(t, b, 'alice', 'a1')
  const mintedBefore = await ticketOf(b, 'mallory', 'm3')

  const answer = await disconnect(a, { userId: 'mallory', revokeSeconds: 3600 })
  t.equal(answer.status, 200)
  t.strictSame(answer.body, { requested: true })
  t.strictSame(await onB.closed, REVOKED_CLOSE, 'the socket on B closes 4403')
  t.strictSame(await onA.closed, REVOKED_CLOSE, 'and the one on A')

  assertRevoked(t, await ticketRequest(b, 'mallory', 'm1'))
  assertRevoked(t, await ticketRequest(b, 'mallory', 'a-new-session'))
  assertRevoked(t, await ticketRequest(a, 'mallory', 'm4'))
  await assertRefusedUpgrade(t, upgrade(t, a, mintedBefore))

  bystander.send({ type: 'ping', id: 'still-here' })
  t.strictSame(await bystander.frame(1), { type: 'pong', id: 'still-here' }, 'another user is untouched')
  await assertWorks(t, a, 'alice', 'a2')

  const members = await admin.zrange(`${PREFIX}revocations`, 0, -1)
  t.ok(members.includes('user:mallory'), 'stored under the prefix, one sorted set')
  const ttl = await admin.pttl(`${PREFIX}revocations`)
  t.ok(ttl > 3_500_000 && ttl <= 3_600_000, `the set expires with its last ban (${ttl} ms)`)
})

await t.test('a session ban refuses only that session; the user\'s other sessions keep working', async (t) => {
  const bannedOnA = await session(t, a, 'bob', 'stolen')
  const bannedOnB = await session(t, b, 'bob', 'stolen')
  const otherOnB = await session(t, b, 'bob', 'laptop')
  const bannedTicket = await ticketOf(a, 'bob', 'stolen')
  const otherTicket = await ticketOf(a, 'bob', 'phone')

  t.equal((await disconnect(b, { sessionId: 'stolen', revokeSeconds: 600 })).status, 200)
  t.strictSame(await bannedOnA.closed, REVOKED_CLOSE)
  t.strictSame(await bannedOnB.closed, REVOKED_CLOSE)

  assertRevoked(t, await ticketRequest(a, 'bob', 'stolen'))
  assertRevoked(t, await ticketRequest(b, 'bob', 'stolen'))
  await assertRefusedUpgrade(t, upgrade(t, b, bannedTicket))

  otherOnB.send({ type: 'ping', id: 1 })
  t.strictSame(await otherOnB.frame(1), { type: 'pong', id: 1 }, 'the open socket of another session stays')
  const other = upgrade(t, b, otherTicket)
  t.match(await other.frame(0), { type: 'session_established', userId: 'bob', sessionId: 'phone' }, 'a ticket of another session minted before the ban still opens')
  await assertWorks(t, a, 'bob', 'desktop')
})

await t.test('an instance started after the ban loads it: tickets and older tickets are refused there too', async (t) => {
  const older = await ticketOf(a, 'carol', 'c1')
  const onA = await session(t, a, 'carol', 'c2')
  t.equal((await disconnect(b, { userId: 'carol', revokeSeconds: 600 })).status, 200)
  t.strictSame(await onA.closed, REVOKED_CLOSE)

  const c = await startGateway(t, env)
  assertRevoked(t, await ticketRequest(c, 'carol', 'c3'))
  await assertRefusedUpgrade(t, upgrade(t, c, older))
  await assertWorks(t, c, 'alice', 'on-c')
})

await t.test('a ban ends after revokeSeconds: tickets work again everywhere', async (t) => {
  const onB = await session(t, b, 'dave', 'd1')
  const onA = await session(t, a, 'dave', 'd2')
  t.equal((await disconnect(a, { userId: 'dave', revokeSeconds: 1 })).status, 200)
  t.strictSame(await onB.closed, REVOKED_CLOSE)
  t.strictSame(await onA.closed, REVOKED_CLOSE)
  assertRevoked(t, await ticketRequest(b, 'dave', 'd1'))

  await sleep(1300)
  await assertWorks(t, b, 'dave', 'd1')
  await assertWorks(t, a, 'dave', 'd3')
})

await t.test('without revokeSeconds sockets close 4403 but nothing is stored: tickets work right after', async (t) => {
  const before = await admin.zrange(`${PREFIX}revocations`, 0, -1)
  const onB = await session(t, b, 'erin', 'e1')
  const older = await ticketOf(a, 'erin', 'e2')
  t.equal((await disconnect(a, { userId: 'erin' })).status, 200)
  t.strictSame(await onB.closed, REVOKED_CLOSE)
  const again = upgrade(t, b, older)
  t.match(await again.frame(0), { type: 'session_established', userId: 'erin' }, 'a ticket minted before the call still opens')
  await assertWorks(t, b, 'erin', 'e1')
  t.strictSame(await admin.zrange(`${PREFIX}revocations`, 0, -1), before, 'no ban stored')
})

await t.test('a ban whose broadcast an instance missed is applied when its pub/sub reconnects', async (t) => {
  const onB = await session(t, b, 'frank', 'f1')
  // Stored as /v1/disconnect stores it, but never broadcast: as if B's subscriber was down.
  await admin.zadd(`${PREFIX}revocations`, Date.now() + 600_000, 'user:frank')
  await admin.pexpire(`${PREFIX}revocations`, 600_000)
  t.equal((await ticketRequest(b, 'frank', 'f2')).status, 200, 'B has not heard of it yet')

  await admin.client('KILL', 'TYPE', 'pubsub')
  t.strictSame(await onB.closed, REVOKED_CLOSE, 'the reload closes the socket')
  await eventually(() => a.app.engine.isReady() && b.app.engine.isReady())
  assertRevoked(t, await ticketRequest(b, 'frank', 'f3'))
  assertRevoked(t, await ticketRequest(a, 'frank', 'f4'))
})

await t.test('metrics: a refused upgrade counts as ticket rejected `revoked` and connect outcome 4403', async (t) => {
  const before = await ticketOf(a, 'grace', 'g1')
  t.equal((await disconnect(a, { sessionId: 'g1', revokeSeconds: 60 })).status, 200)
  const rejectedRevoked = async (): Promise<number> => (await a.app.metrics.ticketsRejected.get()).values.find((sample) => sample.labels.reason === 'revoked')?.value ?? -1
  const refused4403 = async (): Promise<number> => (await a.app.metrics.wsConnects.get()).values.find((sample) => sample.labels.outcome === '4403')?.value ?? -1
  const [rejected, refused] = [await rejectedRevoked(), await refused4403()]
  await eventually(async () => (await ticketRequest(a, 'grace', 'g1')).status === 401)
  await assertRefusedUpgrade(t, upgrade(t, a, before))
  t.equal(await rejectedRevoked(), rejected + 1)
  t.equal(await refused4403(), refused + 1)
})

await t.test('the memory engine behaves the same on its one instance', async (t) => {
  const solo = await startGateway(t)
  const open = await session(t, solo, 'mallory', 'm1')
  const older = await ticketOf(solo, 'mallory', 'm2')
  const otherSession = await ticketOf(solo, 'heidi', 'keep')
  const bannedSession = await ticketOf(solo, 'heidi', 'stolen')

  t.equal((await disconnect(solo, { userId: 'mallory', revokeSeconds: 1 })).status, 200)
  t.strictSame(await open.closed, REVOKED_CLOSE)
  assertRevoked(t, await ticketRequest(solo, 'mallory', 'm3'))
  await assertRefusedUpgrade(t, upgrade(t, solo, older))

  t.equal((await disconnect(solo, { sessionId: 'stolen', revokeSeconds: 60 })).status, 200)
  await assertRefusedUpgrade(t, upgrade(t, solo, bannedSession))
  assertRevoked(t, await ticketRequest(solo, 'heidi', 'stolen'))
  const kept = upgrade(t, solo, otherSession)
  t.match(await kept.frame(0), { type: 'session_established', sessionId: 'keep' }, 'only the banned session is refused')
  kept.close()

  const plain = await session(t, solo, 'ivan', 'i1')
  const ivanOlder = await ticketOf(solo, 'ivan', 'i2')
  t.equal((await disconnect(solo, { userId: 'ivan' })).status, 200)
  t.strictSame(await plain.closed, REVOKED_CLOSE)
  t.match(await upgrade(t, solo, ivanOlder).frame(0), { type: 'session_established' }, 'without revokeSeconds nothing is stored')

  await sleep(1300)
  await assertWorks(t, solo, 'mallory', 'm4')
})
