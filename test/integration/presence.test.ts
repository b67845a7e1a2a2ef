/**
 * Presence (SPEC §11) on two gateways sharing one real Redis, with real sockets: the
 * per-user limit across instances (4429 TOO_MANY_CONNECTIONS), GET /v1/presence by user
 * and by channel, the presence frame, join and leave exactly once per stay with three
 * tabs on two instances, a reconnect inside the delay, an instance that dies without
 * cleanup, the `info` claim and every error path.
 */
import t from 'tap'
import { SignJWT } from 'jose'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { serviceToken } from '../helpers/relay.js'
import { sleep } from '../helpers/async.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const env = {
  REDIS_URL: redis.url,
  PRESENCE_CHANNELS: 'room:*',
  PRESENCE_LEAVE_DELAY_MS: '600',
  PRESENCE_TTL_SECONDS: '1',
  WS_MAX_CONNECTIONS_PER_USER: '3',
  LIFECYCLE_EVENTS: 'join,leave'
}
const a = await startGateway(t, env)
const b = await startGateway(t, env)
const presenceToken = await serviceToken('gateway:presence')

async function jwt (sub: string, claims: Record<string, unknown> = {}, session = `${sub}-s1`): Promise<string> {
  return await new SignJWT({ sessionId: session, channels: ['room:*', 'lobby'], ...claims })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(sub).setIssuedAt().setExpirationTime('1h')
    .sign(new TextEncoder().encode(TEST_SECRET))
}

async function session (gateway: Gateway, sub: string, claims: Record<string, unknown> = {}, sessionId?: string): Promise<TestClient> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await jwt(sub, claims, sessionId))}`)
  t.teardown(() => { client.socket.terminate() })
  const first = await client.frame(0)
  if (first.type !== 'session_established') throw new Error(`no session: ${JSON.stringify(first)}`)
  return client
}

async function subscribe (client: TestClient, channel: string): Promise<void> {
  const id = `sub-${Math.random()}`
  client.send({ type: 'subscribe', channel, id })
  await eventually(() => client.frames.some((frame) => frame.id === id))
}

async function closed (client: TestClient): Promise<void> {
  client.close()
  await client.closed
}

const ofType = (client: TestClient, ...types: string[]): Array<Record<string, unknown>> => client.frames.filter((frame) => types.includes(String(frame.type)))

async function presenceOf (gateway: Gateway, query: string, token: string | null = presenceToken): Promise<{ status: number, body: Record<string, unknown> }> {
  const response = await fetch(`${gateway.baseUrl}/v1/presence?${query}`, token === null ? {} : { headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

await t.test('the per-user limit holds across instances: exactly 3 sessions accepted, the 4th closed 4429 TOO_MANY_CONNECTIONS', async (t) => {
  const tabs = [await session(a, 'limited', {}, 'l1'), await session(b, 'limited', {}, 'l2'), await session(a, 'limited', {}, 'l3')]
  const fourth = new TestClient(`${b.wsUrl}?ticket=${await requestTicket(b, await jwt('limited', {}, 'l4'))}`)
  t.teardown(() => { fourth.socket.terminate() })
  t.strictSame(await fourth.closed, { code: 4429, reason: 'TOO_MANY_CONNECTIONS' })
  t.equal(fourth.frames[0]?.type, 'session_established', 'closed right after the handshake')
  await sleep(200)
  t.ok(tabs.every((tab) => tab.socket.readyState === tab.socket.OPEN), 'the first three stay open')
  const metrics = await (await fetch(`${b.baseUrl}/metrics`)).text()
  t.match(metrics, /^rtgw_connection_limit_closes_total 1$/m)
  t.match(metrics, /^rtgw_ws_server_closes_total\{reason="TOO_MANY_CONNECTIONS"\} 1$/m)

  const user = await presenceOf(b, 'userId=limited')
  t.equal(user.status, 200)
  t.equal(user.body.online, true)
  const connections = user.body.connections as Array<{ connectionId: string, sessionId: string, connectedAt: string }>
  t.strictSame(connections.map((each) => each.sessionId).sort(), ['l1', 'l2', 'l3'], 'every instance\'s sessions, not the refused one')
  t.ok(connections.every((each) => !Number.isNaN(Date.parse(each.connectedAt))))

  await closed(tabs[0]!)
  await eventually(async () => ((await presenceOf(a, 'userId=limited')).body.connections as unknown[]).length === 2)
  const again = await session(b, 'limited', {}, 'l5')
  await sleep(200)
  t.equal(again.socket.readyState, again.socket.OPEN, 'a slot freed by a close is usable on any instance')
})

await t.test('GET /v1/presence?userId= for a user with no connection: offline', async (t) => {
  t.strictSame((await presenceOf(a, 'userId=nobody')).body, { userId: 'nobody', online: false, connections: [] })
})

await t.test('presence across two instances and three tabs of one user: counts exact, info from the JWT, join once', async (t) => {
  const watcher = await session(b, 'watcher')
  await subscribe(watcher, 'room:one')
  const tabs = [await session(a, 'alice', { info: { name: 'Alice' } }, 'a1'), await session(b, 'alice', { info: { name: 'Alice' } }, 'a2'), await session(a, 'alice', { info: { name: 'Alice' } }, 'a3')]
  for (const tab of tabs) await subscribe(tab, 'room:one')
  const bob = await session(b, 'bob')
  await subscribe(bob, 'room:one')
  await sleep(300)
  const expected = { channel: 'room:one', totalUsers: 3, totalConnections: 5, truncated: false }
  const users = [{ userId: 'alice', connections: 3, info: { name: 'Alice' } }, { userId: 'bob', connections: 1 }, { userId: 'watcher', connections: 1 }]
  const sorted = (body: Record<string, unknown>): Record<string, unknown> =>
    ({ ...body, users: [...(body.users as Array<{ userId: string }>)].sort((x, y) => x.userId.localeCompare(y.userId)) })

  const http = await presenceOf(a, 'channel=room:one')
  t.equal(http.status, 200)
  t.strictSame(sorted(http.body), { ...expected, users })

  bob.send({ type: 'presence', channel: 'room:one', id: 'p1' })
  await eventually(() => bob.frames.some((frame) => frame.id === 'p1'))
  t.strictSame(sorted(bob.frames.find((frame) => frame.id === 'p1')!), { type: 'presence', id: 'p1', ...expected, users })

  t.strictSame(ofType(watcher, 'join', 'leave'), [
    { type: 'join', channel: 'room:one', userId: 'watcher' },
    { type: 'join', channel: 'room:one', userId: 'alice', info: { name: 'Alice' } },
    { type: 'join', channel: 'room:one', userId: 'bob' }
  ], 'one join per user, on the other instance too, without offsets')
  t.strictSame(ofType(bob, 'join', 'leave'), [{ type: 'join', channel: 'room:one', userId: 'bob' }])
  const history = await fetch(`${a.baseUrl}/v1/history?channel=room:one`, { headers: { authorization: `Bearer ${await serviceToken('gateway:history')}` } })
  t.strictSame(((await history.json()) as { messages: unknown[] }).messages, [], 'join frames are not in the channel\'s history')

  // Leave once per stay: the three tabs go, on both instances.
  for (const tab of tabs) await closed(tab)
  await sleep(300)
  t.strictSame(ofType(watcher, 'leave'), [], 'no leave inside the delay')
  await eventually(() => ofType(watcher, 'leave').length === 1, 5000)
  await sleep(1200)
  t.strictSame(ofType(watcher, 'join', 'leave').slice(3), [{ type: 'leave', channel: 'room:one', userId: 'alice' }], 'exactly one leave')
  t.strictSame(ofType(bob, 'leave'), [{ type: 'leave', channel: 'room:one', userId: 'alice' }])
  const after = await presenceOf(b, 'channel=room:one')
  t.strictSame(sorted(after.body), { channel: 'room:one', users: users.slice(1), totalUsers: 2, totalConnections: 2, truncated: false })
  const metrics = (await (await fetch(`${a.baseUrl}/metrics`)).text()) + (await (await fetch(`${b.baseUrl}/metrics`)).text())
  const count = (kind: string): number => [...metrics.matchAll(new RegExp(`^rtgw_presence_events_total\\{kind="${kind}"\\} (\\d+)$`, 'gm'))].reduce((sum, match) => sum + Number(match[1]), 0)
  t.equal(count('join'), 3, 'joins counted once across both instances')
  t.equal(count('leave'), 1)
  // SPEC §12: the winner of each transition writes its lifecycle event, once cluster-wide.
  await a.app.lifecycle.settled()
  await b.app.lifecycle.settled()
  const events = (await a.app.engine.readEvents(100)).filter((event) => event.channel === 'room:one')
  const instances = new Set([a.app.lifecycle.instanceId, b.app.lifecycle.instanceId])
  t.strictSame(events.map((event) => `${event.event} ${event.userId}`), ['join watcher', 'join alice', 'join bob', 'leave alice'])
  t.ok(events.every((event) => instances.has(event.instanceId ?? '') && /^\d+$/.test(event.ts ?? '')))
  const aliceJoin = events[1]!
  t.match(aliceJoin, { event: 'join', userId: 'alice', sessionId: 'a1', channel: 'room:one' }, 'the join names the connection that entered first')
  t.match(events[3], { event: 'leave', userId: 'alice', sessionId: '', connectionId: '', channel: 'room:one' }, 'a leave is the user\'s, not a connection\'s')
  await closed(bob)
  await closed(watcher)
})

await t.test('a reconnect inside the delay sends neither leave nor join', async (t) => {
  const watcher = await session(a, 'watcher2')
  await subscribe(watcher, 'room:two')
  const first = await session(a, 'carol')
  await subscribe(first, 'room:two')
  await eventually(() => ofType(watcher, 'join').length === 2)
  await closed(first)
  await sleep(150)
  const back = await session(b, 'carol')
  await subscribe(back, 'room:two')
  await sleep(1500)
  t.strictSame(ofType(watcher, 'join', 'leave'), [
    { type: 'join', channel: 'room:two', userId: 'watcher2' },
    { type: 'join', channel: 'room:two', userId: 'carol' }
  ], 'the stay went on')
  await closed(back)
  await closed(watcher)
})

await t.test('an instance that dies without cleanup: its entries expire within the TTL, then one leave', async (t) => {
  const doomed = await startGateway({ teardown () {} }, env)
  const watcher = await session(a, 'watcher3')
  await subscribe(watcher, 'room:three')
  const victim = await session(doomed, 'dave')
  await subscribe(victim, 'room:three')
  const observer = await session(doomed, 'olive')
  await eventually(() => ofType(watcher, 'join').length === 2)
  // SIGKILL-like: the instance stops refreshing and never exits its entries.
  doomed.app.presence.stop()
  await doomed.app.engine.close()
  victim.socket.terminate()
  const started = Date.now()
  observer.send({ type: 'presence', channel: 'room:three', id: 'down' })
  await eventually(() => observer.frames.some((frame) => frame.id === 'down'))
  t.strictSame(observer.frames.find((frame) => frame.id === 'down'), { type: 'error', code: 'REDIS_NOT_READY', id: 'down' }, 'the engine down: a retryable answer')
  const down = await presenceOf(doomed, 'channel=room:three')
  t.match(down, { status: 503, body: { code: 'REDIS_NOT_READY' } })
  observer.socket.terminate()
  await eventually(() => ofType(watcher, 'leave').length === 1, 5000)
  const elapsed = Date.now() - started
  t.ok(elapsed < 1000 + 1500, `leave ${elapsed} ms after the crash, within the TTL (1 s) and a sweep`)
  t.strictSame(ofType(watcher, 'leave'), [{ type: 'leave', channel: 'room:three', userId: 'dave' }])
  await eventually(async () => (await presenceOf(a, 'userId=dave')).body.online === false, 3000)
  await doomed.app.close().catch(() => {})
  await closed(watcher)
})

await t.test('the presence frame: forbidden without subscribe rights, PRESENCE_NOT_ENABLED outside PRESENCE_CHANNELS', async (t) => {
  const client = await session(a, 'erin')
  client.send({ type: 'presence', channel: 'secret:x', id: 'f' })
  client.send({ type: 'presence', channel: 'lobby', id: 'n' })
  client.send({ type: 'presence', channel: 'room:empty', id: 'e' })
  client.send({ type: 'presence', id: 'bad' })
  await eventually(() => client.frames.length >= 5)
  t.strictSame(client.frames.slice(1).filter((frame) => frame.id !== 'bad'), [
    { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 'f' },
    { type: 'error', code: 'PRESENCE_NOT_ENABLED', id: 'n' },
    { type: 'presence', id: 'e', channel: 'room:empty', users: [], totalUsers: 0, totalConnections: 0, truncated: false }
  ])
  t.match(client.frames.find((frame) => frame.id === 'bad'), { type: 'error', code: 'BAD_MESSAGE', id: 'bad' })
  await closed(client)
})

await t.test('GET /v1/presence errors: scope, no token, neither or both parameters, unknown parameter, non-presence channel', async (t) => {
  t.match(await presenceOf(a, 'channel=room:one', null), { status: 401, body: { code: 'MISSING_TOKEN' } })
  t.match(await presenceOf(a, 'channel=room:one', await serviceToken('gateway:history')), { status: 403, body: { code: 'INSUFFICIENT_SCOPE' } })
  t.match(await presenceOf(a, ''), { status: 400, body: { code: 'BAD_REQUEST', message: 'exactly one of channel and userId is required' } })
  t.match(await presenceOf(a, 'channel=room:one&userId=u'), { status: 400, body: { code: 'BAD_REQUEST' } })
  t.match(await presenceOf(a, 'chanel=room:one'), { status: 400, body: { code: 'BAD_REQUEST' } })
  t.match(await presenceOf(a, 'channel=lobby'), { status: 400, body: { error: 'BAD_REQUEST', code: 'PRESENCE_NOT_ENABLED' } })
})

await t.test('an info claim over 1 KiB: the ticket request is refused 400 INFO_TOO_LARGE', async (t) => {
  const response = await fetch(`${a.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await jwt('big', { info: { bio: 'x'.repeat(1100) } })}` } })
  t.equal(response.status, 400)
  t.match(await response.json(), { error: 'BAD_REQUEST', code: 'INFO_TOO_LARGE' })
  const fits = await fetch(`${a.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await jwt('fits', { info: { bio: 'x'.repeat(1000) } })}` } })
  t.equal(fits.status, 200)
})
