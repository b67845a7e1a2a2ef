import t, { type Test } from 'tap'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'
import { readyzShape } from '../helpers/readyz.js'

// Redis is not running when the gateway starts: the port is only reserved.
const redisPort = await freePort()
let redis: RedisServer | undefined
t.teardown(async () => { await redis?.stop() })

// Log lines are dropped here (LOG_LEVEL is honoured or not: see the last subtest).
const sink = { write (): void {} }
const gateway = await startGateway(t, { REDIS_URL: `redis://127.0.0.1:${redisPort}` }, { waitForEngine: false, logStream: sink })

interface JsonResponse { status: number, body: unknown, headers: Headers, elapsedMs: number }

async function get (gw: Gateway, path: string): Promise<JsonResponse> {
  const started = performance.now()
  const response = await fetch(`${gw.baseUrl}${path}`)
  return { status: response.status, body: await response.json(), headers: response.headers, elapsedMs: performance.now() - started }
}

async function postTicket (gw: Gateway, token?: string): Promise<JsonResponse> {
  const started = performance.now()
  const response = await fetch(`${gw.baseUrl}/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token ?? await userToken()}` }
  })
  return { status: response.status, body: await response.json(), headers: response.headers, elapsedMs: performance.now() - started }
}

/** Nothing listens on the port: the reason is the socket's error code. */
const NOT_READY_REDIS = { status: 'not_ready', checks: { redis: 'fail: ECONNREFUSED', pubsub: 'ok', draining: 'ok' }, failing: ['redis'] }
const READY = { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } }
/** Well-formed (43 base64url characters), so the gateway has to ask the engine about it. */
const WELL_FORMED_TICKET = 'A'.repeat(43)

async function readyzStatus (gw: Gateway): Promise<number> {
  return (await get(gw, '/readyz')).status
}

/** SPEC §3: the exact 503 of POST /ws-ticket, fast, with Retry-After. */
async function assertTicket503 (t: Test): Promise<void> {
  const response = await postTicket(gateway)
  t.equal(response.status, 503)
  t.strictSame(response.body, {
    error: 'SERVICE_UNAVAILABLE',
    code: 'WS_TICKET_REDIS_NOT_READY',
    message: 'WebSocket ticket service temporarily unavailable - Redis not ready',
    traceId: response.headers.get('x-request-id')
  })
  t.match(response.headers.get('x-request-id'), /^[0-9a-f-]{36}$/)
  const retryAfter = Number(response.headers.get('retry-after'))
  t.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After is a positive integer (${response.headers.get('retry-after')})`)
  t.ok(response.elapsedMs < 1000, `answered without waiting for Redis (${Math.round(response.elapsedMs)} ms)`)
}

async function assertUpgrade1013 (t: Test): Promise<void> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${WELL_FORMED_TICKET}`)
  t.teardown(() => { client.socket.terminate() })
  t.strictSame(await client.closed, { code: 1013, reason: 'WS_TICKET_REDIS_NOT_READY' })
  t.strictSame(client.frames, [], 'no session was established')
}

async function assertLive (t: Test): Promise<void> {
  const live = await get(gateway, '/livez')
  t.equal(live.status, 200)
  t.strictSame(live.body, { status: 'ok' })
}

await t.test('booted while Redis is down: live, not ready, 503 tickets, 1013 upgrades', async (t) => {
  t.equal(gateway.app.engine.isReady(), false)
  await assertLive(t)
  const ready = await get(gateway, '/readyz')
  t.equal(ready.status, 503)
  t.strictSame(readyzShape(ready.body), NOT_READY_REDIS)
  await assertTicket503(t)
  await assertUpgrade1013(t)
  const rejected = await gateway.app.metrics.ticketsRejected.get()
  t.equal(rejected.values.find((value) => value.labels.reason === 'engine_unavailable')?.value, 1)
})

await t.test('Redis comes up: ready without a restart, tickets work', async (t) => {
  redis = await RedisServer.start(redisPort)
  await eventually(async () => await readyzStatus(gateway) === 200)
  const ready = await get(gateway, '/readyz')
  t.equal(ready.status, 200)
  t.strictSame(readyzShape(ready.body), READY)
  await assertLive(t)

  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  client.close()
  t.strictSame(await client.closed, { code: 1005, reason: '' })
})

await t.test('Redis is killed: not ready again, fast 503s, open sessions stay up; then it comes back', async (t) => {
  const survivor = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway)}`)
  t.teardown(() => { survivor.socket.terminate() })
  t.equal((await survivor.frame(0)).type, 'session_established')

  await redis!.kill()
  // First the reason is what closed the connection, then why reconnecting fails.
  await eventually(async () => readyzShape((await get(gateway, '/readyz')).body).checks.redis === 'fail: ECONNREFUSED', 5000)
  const notReady = await get(gateway, '/readyz')
  t.equal(notReady.status, 503)
  t.strictSame(readyzShape(notReady.body), NOT_READY_REDIS)
  await assertLive(t)
  await assertTicket503(t)
  await assertUpgrade1013(t)

  // The ticket authenticated the session once; losing Redis does not end it.
  survivor.send({ type: 'ping', id: 'after-kill' })
  t.strictSame(await survivor.frame(1), { type: 'pong', id: 'after-kill' })

  await redis!.start()
  await eventually(async () => await readyzStatus(gateway) === 200)
  t.strictSame(readyzShape((await get(gateway, '/readyz')).body), READY)
  await assertLive(t)
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  client.close()
  survivor.close()
})

await t.test('drain: readiness fails, open sockets and new upgrades get 1012', async (t) => {
  const draining = await startGateway(t, { REDIS_URL: redis!.url, SHUTDOWN_GRACE_MS: '2000' }, { logStream: sink })
  t.equal(await readyzStatus(draining), 200)

  const open = new TestClient(`${draining.wsUrl}?ticket=${await requestTicket(draining)}`)
  t.teardown(() => { open.socket.terminate() })
  t.equal((await open.frame(0)).type, 'session_established')
  const spareTicket = await requestTicket(draining)

  const started = Date.now()
  const drained = draining.app.drain()
  t.strictSame(await open.closed, { code: 1012, reason: 'SERVER_RESTART' })
  await drained
  t.ok(Date.now() - started < 2000, 'drain finished once the last socket closed, within the grace')
  t.equal(draining.app.hub.size, 0)

  const ready = await get(draining, '/readyz')
  t.equal(ready.status, 503)
  t.strictSame(readyzShape(ready.body), { status: 'not_ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'fail: SIGTERM' }, failing: ['draining'] })
  const live = await get(draining, '/livez')
  t.equal(live.status, 200)

  const late = new TestClient(`${draining.wsUrl}?ticket=${spareTicket}`)
  t.teardown(() => { late.socket.terminate() })
  t.strictSame(await late.closed, { code: 1012, reason: 'SERVER_RESTART' })
  t.strictSame(late.frames, [], 'no session on a draining instance')

  // The draining instance did not burn the ticket: the client can use it on another instance.
  const elsewhere = new TestClient(`${gateway.wsUrl}?ticket=${spareTicket}`)
  t.teardown(() => { elsewhere.socket.terminate() })
  t.equal((await elsewhere.frame(0)).type, 'session_established')
  elsewhere.close()
})

await t.test('probe routes honour LOG_LEVEL: a 503 /readyz logs nothing below the configured level', async (t) => {
  const lines: string[] = []
  const quiet = await startGateway(t, {
    REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    LOG_LEVEL: 'error'
  }, { waitForEngine: false, logStream: { write: (line: string) => { lines.push(line) } } })
  t.equal(await readyzStatus(quiet), 503)
  t.equal((await get(quiet, '/livez')).status, 200)
  const belowError = lines.map((line) => JSON.parse(line) as { level: number, msg: string }).filter((line) => line.level < 50)
  t.strictSame(belowError.map((line) => line.msg), [], 'no line below error with LOG_LEVEL=error')
})
