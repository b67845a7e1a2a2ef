import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const gateway = await startGateway(t, {
  REDIS_URL: redis.url,
  ALLOWED_ORIGINS: 'https://app.example.com,http://localhost:3000',
  WS_MAX_PAYLOAD_BYTES: '1024',
  WS_MESSAGE_RATE_PER_SECOND: '5',
  WS_MESSAGE_BURST: '20',
  HEARTBEAT_INTERVAL_MS: '200'
})

async function connect (gw: Gateway = gateway, options: ConstructorParameters<typeof TestClient>[1] = {}): Promise<TestClient> {
  const client = new TestClient(`${gw.wsUrl}?ticket=${await requestTicket(gw)}`, options)
  t.teardown(() => { client.socket.terminate() })
  return client
}

await t.test('a valid ticket opens a session whose first frame is session_established', async (t) => {
  const client = await connect()
  const first = await client.frame(0)
  t.equal(first.type, 'session_established')
  t.equal(first.userId, 'alice')
  t.equal(first.sessionId, 's1')
  t.match(first.connectionId, /^[0-9a-f-]{36}$/)
  t.equal(first.heartbeatIntervalMs, 200)
  t.ok(Math.abs(Date.parse(first.serverTime as string) - Date.now()) < 60_000, 'serverTime is an ISO date near now')
  t.equal(gateway.app.hub.size, 1)
  client.close()
  t.same(await client.closed, { code: 1005, reason: '' })
})

await t.test('missing ticket: error frame WS_TICKET_MISSING, then 4401', async (t) => {
  const client = new TestClient(gateway.wsUrl)
  t.same(await client.frame(0), { type: 'error', code: 'WS_TICKET_MISSING' })
  t.same(await client.closed, { code: 4401, reason: 'WS_TICKET_MISSING' })
})

await t.test('unknown and malformed tickets: WS_TICKET_INVALID, then 4401', async (t) => {
  for (const ticket of ['A'.repeat(43), 'short', 'x'.repeat(5000)]) {
    const client = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
    t.same(await client.frame(0), { type: 'error', code: 'WS_TICKET_INVALID' })
    t.same(await client.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  }
})

await t.test('a reused ticket is refused with 4401', async (t) => {
  const ticket = await requestTicket(gateway)
  const first = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
  t.equal((await first.frame(0)).type, 'session_established')
  const second = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
  t.same(await second.frame(0), { type: 'error', code: 'WS_TICKET_INVALID' })
  t.same(await second.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  first.close()
})

await t.test('an expired ticket is refused with 4401', async (t) => {
  const shortLived = await startGateway(t, { REDIS_URL: redis.url, TICKET_TTL_SECONDS: '1' })
  const ticket = await requestTicket(shortLived)
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const client = new TestClient(`${shortLived.wsUrl}?ticket=${ticket}`)
  t.same(await client.frame(0), { type: 'error', code: 'WS_TICKET_INVALID' })
  t.same(await client.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  const rejected = await shortLived.app.metrics.ticketsRejected.get()
  t.equal(rejected.values.find((value) => value.labels.reason === 'expired')?.value, 1)
})

await t.test('Origin allow-list', async (t) => {
  await t.test('a foreign Origin gets HTTP 403 and no upgrade; the ticket survives', async (t) => {
    const ticket = await requestTicket(gateway)
    const refused = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`, { origin: 'https://evil.example.com' })
    t.equal(await refused.opened, false)
    t.equal(refused.unexpectedStatus, 403)
    const lookalike = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`, { origin: 'https://app.example.com.evil.com' })
    t.equal(await lookalike.opened, false)
    t.equal(lookalike.unexpectedStatus, 403)
    const allowed = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`, { origin: 'https://app.example.com' })
    t.equal((await allowed.frame(0)).type, 'session_established')
    allowed.close()
  })
  await t.test('no Origin header (non-browser client) is allowed', async (t) => {
    const client = await connect()
    t.equal((await client.frame(0)).type, 'session_established')
    client.close()
  })
})

await t.test('a plain GET on the WebSocket path answers 426 with the error body', async (t) => {
  const response = await fetch(`${gateway.wsUrl.replace('ws:', 'http:')}?ticket=abc`)
  t.equal(response.status, 426)
  t.match(await response.json(), { error: 'UPGRADE_REQUIRED', code: 'UPGRADE_REQUIRED' })
})

await t.test('ping gets pong, with the request id echoed', async (t) => {
  const client = await connect()
  await client.frame(0)
  client.send({ type: 'ping' })
  t.same(await client.frame(1), { type: 'pong' })
  client.send({ type: 'ping', id: 'r1' })
  t.same(await client.frame(2), { type: 'pong', id: 'r1' })
  client.close()
})

await t.test('bad input gets BAD_MESSAGE and the socket stays open', async (t) => {
  const client = await connect()
  await client.frame(0)
  const bad = [
    'not json',
    '[1,2]',
    '"text"',
    JSON.stringify({ id: 'no-type' }),
    JSON.stringify({ type: 'teleport', id: 7 }),
    JSON.stringify({ type: 'ping', id: { nested: true } })
  ]
  for (const text of bad) client.send(text)
  const replies = await Promise.all(bad.map(async (_, index) => await client.frame(index + 1)))
  t.same(replies.map((reply) => [reply.type, reply.code, reply.id]), [
    ['error', 'BAD_MESSAGE', undefined],
    ['error', 'BAD_MESSAGE', undefined],
    ['error', 'BAD_MESSAGE', undefined],
    ['error', 'BAD_MESSAGE', 'no-type'],
    ['error', 'BAD_MESSAGE', 7],
    ['error', 'BAD_MESSAGE', undefined]
  ])
  client.send({ type: 'ping', id: 'still-open' })
  t.same(await client.frame(bad.length + 1), { type: 'pong', id: 'still-open' })
  client.close()
})

await t.test('a binary frame closes with 1003', async (t) => {
  const client = await connect()
  await client.frame(0)
  client.socket.send(Buffer.from([1, 2, 3]), { binary: true })
  t.same(await client.closed, { code: 1003, reason: 'BINARY_NOT_SUPPORTED' })
})

await t.test('a frame over WS_MAX_PAYLOAD_BYTES closes with 1009; other clients are unaffected', async (t) => {
  const bystander = await connect()
  await bystander.frame(0)
  const client = await connect()
  await client.frame(0)
  client.send(JSON.stringify({ type: 'ping', id: 'x'.repeat(2000) }))
  t.equal((await client.closed).code, 1009)
  bystander.send({ type: 'ping', id: 'ok' })
  t.same(await bystander.frame(1), { type: 'pong', id: 'ok' })
  bystander.close()
})

await t.test('flooding past the per-connection rate closes with 4429', async (t) => {
  const client = await connect()
  await client.frame(0)
  for (let index = 0; index < 40; index += 1) client.send({ type: 'ping' })
  t.same(await client.closed, { code: 4429, reason: 'RATE_LIMITED' })
  t.ok(client.frames.length - 1 >= 20 && client.frames.length - 1 < 40, `the burst was answered before the close (${client.frames.length - 1} pongs)`)
})

await t.test('a peer that never answers protocol pings is terminated after two missed heartbeats', async (t) => {
  const client = await connect(gateway, { autoPong: false })
  await client.frame(0)
  const closed = await client.closed
  t.equal(closed.code, 1006, 'terminated without a close frame')
  await eventually(() => gateway.app.hub.size === 0)
  t.equal(gateway.app.hub.size, 0)
})

await t.test('a live peer answering pings stays connected across heartbeats', async (t) => {
  const client = await connect()
  await client.frame(0)
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(client.socket.readyState, client.socket.OPEN)
  client.close()
})

await t.test('upgrades to other routes are refused with 404, never logged with their URL', async (t) => {
  const client = new TestClient(`${gateway.baseUrl.replace('http:', 'ws:')}/livez?ticket=${await requestTicket(gateway, await userToken('bob', 's2'))}`)
  t.equal(await client.opened, false)
  t.equal(client.unexpectedStatus, 404)
})
