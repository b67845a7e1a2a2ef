import t from 'tap'
import WebSocket from 'ws'
import { Redis } from 'ioredis'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, startGateway } from '../helpers/gateway.js'
import { userToken, tokenWithoutSession } from '../helpers/tokens.js'
import { publish, serviceToken } from '../helpers/relay.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { rejectionOf, sleep } from '../helpers/async.js'
import { TestClient } from '../helpers/ws-client.js'
import type { ChannelMessage, ClientStatus, RealtimeClient } from '../../packages/client/src/realtime-client.js'
import { AuthenticationError, ConnectionError, GatewayClientError, TicketError } from '../../packages/client/src/errors.js'
import type { WebSocketConstructor } from '../../packages/client/src/websocket.js'
import { clientOf } from '../helpers/sdk-client.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const admin = new Redis(redis.url)
t.teardown(() => { admin.disconnect() })
const gatewayEnv = { REDIS_URL: redis.url, TICKET_RATE_LIMIT_PER_USER: '10000', AUTH_FAILURE_LIMIT_PER_IP: '10000', SHUTDOWN_GRACE_MS: '500' }
const gateway = await startGateway(t, gatewayEnv)


/** Everything a client reports, in order. */
function record (client: RealtimeClient): { statuses: ClientStatus[], messages: ChannelMessage[], errors: GatewayClientError[] } {
  const seen = { statuses: [] as ClientStatus[], messages: [] as ChannelMessage[], errors: [] as GatewayClientError[] }
  client.on('status', (status) => { seen.statuses.push(status) })
  client.on('message', (message) => { seen.messages.push(message) })
  client.on('error', (error) => { seen.errors.push(error) })
  return seen
}

/** fetch that counts ticket requests. */
function countingFetch (): { fetch: typeof fetch, tickets: () => number } {
  let tickets = 0
  return {
    fetch: async (input, init) => {
      if (String(input).endsWith('/ws-ticket')) tickets += 1
      return await fetch(input, init)
    },
    tickets: () => tickets
  }
}

/** The `ws` class, counting the sockets a client opens. */
function countingWebSocket (): { WebSocket: WebSocketConstructor, opened: () => number } {
  let opened = 0
  class Counted extends WebSocket {
    constructor (url: string) {
      super(url)
      opened += 1
    }
  }
  return { WebSocket: Counted, opened: () => opened }
}

await t.test('first connect: ready on session_established, subscribe, receive, send with ack', async (t) => {
  const counter = countingFetch()
  const client = clientOf(t, gateway.baseUrl, { fetch: counter.fetch })
  const seen = record(client)
  t.equal(client.status, 'closed', 'nothing happens before connect()')
  await client.connect()
  t.equal(client.status, 'open')
  t.same(seen.statuses, ['connecting', 'open'])
  t.match(client.getConnectionStatus(), { status: 'open', connected: true, mode: 'websocket', reconnectAttempts: 0, pendingSends: 0, lastError: undefined })
  t.type(client.getConnectionStatus().connectionId, 'string')
  await client.ready()
  t.pass('ready() resolves at once while open')

  const subscribed = await client.subscribe('user:alice')
  t.match(subscribed, { channel: 'user:alice', recovered: true })
  const published = await publish(gateway, { channel: 'user:alice', data: { hello: 1 } })
  await eventually(() => seen.messages.length === 1)
  t.same(seen.messages, [{ channel: 'user:alice', offset: published.body.offset, data: { hello: 1 } }])

  const before = await admin.xlen('rtgw:inbound')
  await client.send({ kind: 'chat', text: 'hi' })
  t.equal(await admin.xlen('rtgw:inbound'), before + 1, 'appended once, then acked')
  t.equal(counter.tickets(), 1, 'one ticket for one connect')
  t.same(seen.errors, [])
})

await t.test('ready() rejects when the gateway is unreachable; max attempts end in RECONNECT_FAILED', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}`
  const client = clientOf(t, url, { maxReconnectAttempts: 2, backoff: { initialMs: 20, maxMs: 20 } })
  const seen = record(client)
  const error = await rejectionOf(client.connect())
  t.ok(error instanceof ConnectionError, 'a typed ConnectionError, never a resolve')
  t.match(error, { code: 'NETWORK_ERROR' })
  await eventually(() => client.status === 'closed')
  t.match(client.getConnectionStatus(), { status: 'closed', connected: false, lastError: { code: 'RECONNECT_FAILED' } })
  t.same(seen.errors.map((e) => e.code), ['NETWORK_ERROR', 'NETWORK_ERROR', 'NETWORK_ERROR', 'RECONNECT_FAILED'], 'the first attempt and two retries')
  t.match(await rejectionOf(client.ready()), { code: 'RECONNECT_FAILED' }, 'a stopped client rejects ready()')
})

await t.test('401: the token provider is asked once for a fresh JWT, then AuthenticationError', async (t) => {
  const calls: boolean[] = []
  const client = clientOf(t, gateway.baseUrl, {
    getToken: async ({ forceRefresh }) => {
      calls.push(forceRefresh)
      return await userToken('alice', 's1', { secret: 'a-different-secret-of-thirty-two-characters' })
    }
  })
  const error = await rejectionOf(client.connect())
  t.ok(error instanceof AuthenticationError)
  t.match(error, { code: 'INVALID_TOKEN', status: 401, action: 'reauth' })
  t.same(calls, [false, true], 'called once more with forceRefresh, and no more')
  t.equal(client.status, 'closed', 'authentication failures stop the client')
})

await t.test('MISSING_SESSION is a hard failure: no token refresh, no retry', async (t) => {
  const calls: boolean[] = []
  const client = clientOf(t, gateway.baseUrl, { getToken: async ({ forceRefresh }) => { calls.push(forceRefresh); return await tokenWithoutSession() } })
  const error = await rejectionOf(client.connect())
  t.ok(error instanceof AuthenticationError)
  t.match(error, { code: 'MISSING_SESSION', status: 401 })
  t.same(calls, [false])
  t.equal(client.status, 'closed')
})

await t.test('4401 after a reused ticket: exactly one new ticket, then open', async (t) => {
  const counter = countingFetch()
  const sockets = countingWebSocket()
  const logged: string[] = []
  const log = (message: string, details?: Record<string, unknown>): void => { logged.push(`${message} ${JSON.stringify(details ?? {})}`) }
  const client = clientOf(t, gateway.baseUrl, { fetch: counter.fetch, WebSocket: sockets.WebSocket, logger: { debug: log, info: log, warn: log, error: log } })
  // Someone else spends the ticket the client holds (e.g. a copied URL).
  const held = await client.tickets.getValidTicket()
  const thief = new TestClient(`${gateway.wsUrl}?ticket=${held.ticket}`)
  t.equal((await thief.frame(0)).type, 'session_established')
  t.teardown(() => { thief.close() })

  await client.connect()
  t.equal(client.status, 'open')
  t.equal(counter.tickets(), 2, 'the spent ticket and one fresh one')
  t.equal(sockets.opened(), 2, 'one refused socket, one retry')
  t.ok(logged.length > 0, 'the logger heard the refusal and the retry')
  t.notOk(logged.some((line) => line.includes(held.ticket) || line.includes('ticket=')), 'no ticket in any log line')
})

await t.test('4401 twice in a row: AuthenticationError, no third socket', async (t) => {
  const sockets = countingWebSocket()
  const client = clientOf(t, gateway.baseUrl, { WebSocket: sockets.WebSocket })
  // A ticket manager that can only hand out tickets the gateway does not know.
  Object.defineProperty(client.tickets, 'getValidTicket', { value: async () => ({ ticket: 'unknown-ticket', expiresAt: Date.now() + 30_000 }) })
  const error = await rejectionOf(client.connect())
  t.ok(error instanceof AuthenticationError)
  t.match(error, { code: 'WS_TICKET_INVALID', status: 4401 })
  t.equal(sockets.opened(), 2)
  t.equal(client.status, 'closed')
})

await t.test('4403 (session revoked by a backend): the client stops and does not reconnect', async (t) => {
  const counter = countingFetch()
  const client = clientOf(t, gateway.baseUrl, { fetch: counter.fetch, getToken: async () => await userToken('mallory', 'm1') })
  const seen = record(client)
  await client.connect()
  const response = await fetch(`${gateway.baseUrl}/v1/disconnect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await serviceToken('gateway:disconnect')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'mallory' })
  })
  t.equal(response.status, 200)
  await eventually(() => client.status === 'closed')
  t.ok(client.getConnectionStatus().lastError instanceof AuthenticationError)
  t.match(client.getConnectionStatus().lastError, { code: 'SESSION_REVOKED', status: 4403, action: 'stop' })
  t.same(seen.statuses, ['connecting', 'open', 'closed'])
  await sleep(200)
  t.equal(counter.tickets(), 1, 'no new ticket after a revocation')
})

await t.test('4429: the client backs off at least the initial delay before reconnecting', async (t) => {
  const limited = await startGateway(t, { ...gatewayEnv, WS_MESSAGE_RATE_PER_SECOND: '5', WS_MESSAGE_BURST: '5' })
  const attempts: number[] = []
  const client = clientOf(t, limited.baseUrl, {
    // A heartbeat far faster than the gateway allows floods it.
    heartbeat: { intervalMs: 5, timeoutMs: 60_000 },
    // Zero jitter: without the 4429 floor the client would come straight back.
    backoff: { initialMs: 300, random: () => 0 },
    fetch: async (input, init) => {
      if (String(input).endsWith('/ws-ticket')) attempts.push(Date.now())
      return await fetch(input, init)
    }
  })
  const seen = record(client)
  await client.connect()
  // >= 2: on a loaded machine a third attempt can come before the check runs again.
  await eventually(() => seen.errors.length > 0 && attempts.length >= 2)
  client.close()
  t.match(seen.errors[0], { code: 'RATE_LIMITED', status: 4429 })
  t.ok(seen.errors[0] instanceof ConnectionError)
  t.ok(attempts[1]! - attempts[0]! >= 300, `waited ${attempts[1]! - attempts[0]!} ms before the next ticket`)
  t.same(seen.statuses.slice(0, 3), ['connecting', 'open', 'reconnecting'])
})

await t.test('close() while the socket is still connecting ends quietly (no error thrown at the app)', async (t) => {
  let opened = 0
  class ClosedWhileConnecting extends WebSocket {
    constructor (url: string) {
      super(url)
      opened += 1
      // The handshake cannot have finished before the next microtask.
      queueMicrotask(() => { client.close() })
    }
  }
  const client = clientOf(t, gateway.baseUrl, { WebSocket: ClosedWhileConnecting })
  const error = await rejectionOf(client.connect())
  t.match(error, { code: 'CLIENT_CLOSED' })
  t.equal(opened, 1)
  t.equal(client.status, 'closed')
  await sleep(100)
})

await t.test('a throwing message handler never stops later messages or other handlers', async (t) => {
  const errors: string[] = []
  const client = clientOf(t, gateway.baseUrl, { logger: { error: (message) => { errors.push(message) } } })
  client.on('message', () => { throw new Error('app bug') })
  const seen = record(client)
  await client.connect()
  await client.subscribe('user:alice')
  for (let n = 0; n < 3; n += 1) await publish(gateway, { channel: 'user:alice', data: n })
  await eventually(() => seen.messages.length === 3)
  t.same(seen.messages.map((message) => message.data), [0, 1, 2])
  t.equal(errors.length, 3, 'each throw is reported to the logger')
  t.equal(client.status, 'open')
})

await t.test('a dead socket (no frames at all) is detected by the heartbeat; the client resumes without loss', async (t) => {
  const proxy = await TcpProxy.start(Number(new URL(gateway.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  const client = clientOf(t, proxy.url, {
    heartbeat: { intervalMs: 100, timeoutMs: 200 },
    backoff: { initialMs: 50, maxMs: 50 },
    // The first ticket request after the freeze is swallowed too; it must not hang.
    ticketOptions: { requestTimeoutMs: 500 }
  })
  const seen = record(client)
  await client.connect()
  await client.subscribe('user:alice')
  await publish(gateway, { channel: 'user:alice', data: 'before' })
  await eventually(() => seen.messages.length === 1)

  proxy.freeze()
  await publish(gateway, { channel: 'user:alice', data: 'while dead' })
  await eventually(() => client.status === 'reconnecting')
  t.match(seen.errors.at(-1), { code: 'HEARTBEAT_TIMEOUT', status: 1006 })
  proxy.thaw()
  await eventually(() => client.status === 'open')
  await publish(gateway, { channel: 'user:alice', data: 'after' })
  await eventually(() => seen.messages.length === 3)
  t.same(seen.messages.map((message) => message.data), ['before', 'while dead', 'after'], 'in order, once each')
})

await t.test('one visibility/online listener pair reconnects at once instead of waiting out the backoff', async (t) => {
  const proxy = await TcpProxy.start(Number(new URL(gateway.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  const added: string[] = []
  const target = (): EventTarget & { visibilityState: string } => {
    const events = new EventTarget() as EventTarget & { visibilityState: string }
    events.visibilityState = 'visible'
    const add = events.addEventListener.bind(events)
    events.addEventListener = (type: string, listener: Parameters<EventTarget['addEventListener']>[1]) => { added.push(type); add(type, listener) }
    return events
  }
  const page = { document: target(), window: target() }
  // A minute of backoff: only the page events can bring it back within the test.
  const client = clientOf(t, proxy.url, { page, backoff: { initialMs: 60_000, random: () => 0.99 } })
  await client.connect()
  t.same(added.sort(), ['online', 'visibilitychange'], 'one listener per event')

  proxy.dropAll()
  await eventually(() => client.status === 'reconnecting')
  await sleep(50)
  page.window.dispatchEvent(new Event('online'))
  await eventually(() => client.status === 'open', 5000)

  proxy.dropAll()
  await eventually(() => client.status === 'reconnecting')
  page.document.visibilityState = 'hidden'
  page.document.dispatchEvent(new Event('visibilitychange'))
  await sleep(100)
  t.equal(client.status, 'reconnecting', 'a page being hidden does not reconnect')
  page.document.visibilityState = 'visible'
  page.document.dispatchEvent(new Event('visibilitychange'))
  await eventually(() => client.status === 'open', 5000)
  t.equal(client.getConnectionStatus().reconnectAttempts, 0)
  client.close()
  t.same(added.length, 2, 'reconnects added no listeners')
})

await t.test('sends: unacked ones are sent again with the same id after a reconnect and appended once; the queue is bounded', async (t) => {
  const proxy = await TcpProxy.start(Number(new URL(gateway.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  const client = clientOf(t, proxy.url, { maxPendingSends: 3, backoff: { initialMs: 50, maxMs: 50 } })
  await client.connect()
  const before = await admin.xlen('rtgw:inbound')

  // The gateway gets the sends, but the acks never come back.
  proxy.freeze('downstream')
  const sends = [1, 2, 3].map(async (n) => { await client.send({ n }) })
  const full = await rejectionOf(client.send({ n: 4 }))
  t.ok(full instanceof GatewayClientError)
  t.match(full, { code: 'SEND_QUEUE_FULL' })
  t.equal(client.getConnectionStatus().pendingSends, 3)
  await eventually(async () => await admin.xlen('rtgw:inbound') === before + 3)

  proxy.thaw()
  proxy.dropAll()
  await Promise.all(sends)
  t.pass('all three acked after the reconnect')
  t.equal(await admin.xlen('rtgw:inbound'), before + 3, 'the retries were deduplicated by id')
  const entries = await admin.xrange('rtgw:inbound', '-', '+')
  const ids = entries.slice(-3).map(([, fields]) => fields[fields.indexOf('id') + 1])
  t.equal(new Set(ids).size, 3)
  t.equal(client.getConnectionStatus().pendingSends, 0)
})

await t.test('a refused channel rejects subscribe() with the gateway code and is not retried', async (t) => {
  const client = clientOf(t, gateway.baseUrl)
  await client.connect()
  const error = await rejectionOf(client.subscribe('user:bob'))
  t.ok(error instanceof GatewayClientError)
  t.match(error, { code: 'FORBIDDEN_CHANNEL' })
  t.equal(client.status, 'open')
})

await t.test('a subscribe refused with REDIS_NOT_READY is retried until Redis is back, never forgotten', async (t) => {
  const ownRedis = await RedisServer.start()
  t.teardown(async () => { await ownRedis.stop() })
  const own = await startGateway(t, { ...gatewayEnv, REDIS_URL: ownRedis.url })
  const client = clientOf(t, own.baseUrl)
  const seen = record(client)
  await client.connect()
  const errors: string[] = []
  client.on('error', (error) => { errors.push(error.code) })

  await ownRedis.kill()
  await eventually(() => !own.app.engine.isReady())
  const subscribed = client.subscribe('user:alice')
  await sleep(1500)
  t.equal(client.status, 'open', 'the socket stays open while Redis is away')
  await ownRedis.start()
  await eventually(() => own.app.engine.isReady())
  t.match(await subscribed, { channel: 'user:alice', recovered: true }, 'confirmed once Redis is back')
  await publish(own, { channel: 'user:alice', data: 'after' })
  await eventually(() => seen.messages.length === 1)
  t.same(seen.messages.map((message) => message.data), ['after'])
  t.same(errors, [], 'a retryable refusal is not reported as an error')
})

await t.test('Redis down: 200/500/1000 ms ticket retries, polling receives a message, Redis back: WebSocket again', async (t) => {
  const ownRedis = await RedisServer.start()
  t.teardown(async () => { await ownRedis.stop() })
  const own = await startGateway(t, { ...gatewayEnv, REDIS_URL: ownRedis.url })
  await ownRedis.kill()
  await eventually(() => !own.app.engine.isReady())

  const waits: number[] = []
  const counter = countingFetch()
  const client = clientOf(t, own.baseUrl, {
    fetch: counter.fetch,
    ticketOptions: { sleep: async (ms) => { waits.push(ms); await sleep(ms) } },
    // Polling retries quickly; the WebSocket is probed again only after ~6 s.
    backoff: { initialMs: 200, maxMs: 400 },
    probeBackoff: { initialMs: 6000, maxMs: 6000, random: () => 0.999 },
    pollTimeoutMs: 5000
  })
  const seen = record(client)
  const statusAt: ClientStatus[] = []
  client.on('message', () => { statusAt.push(client.status) })
  const subscribed = client.subscribe('user:alice')

  const error = await rejectionOf(client.connect())
  t.ok(error instanceof TicketError)
  t.match(error, { code: 'WS_TICKET_REDIS_NOT_READY', status: 503 })
  t.same(waits, [200, 500, 1000], 'SPEC §6 timeline')
  t.equal(counter.tickets(), 4, 'the first request and three retries')
  t.equal(client.status, 'polling')
  t.equal(client.getConnectionStatus().mode, 'polling')

  await ownRedis.start()
  await eventually(() => own.app.engine.isReady())
  t.match(await subscribed, { channel: 'user:alice', recovered: true }, 'confirmed by the first poll')
  await publish(own, { channel: 'user:alice', data: 'polled' })
  await eventually(() => seen.messages.length === 1)
  t.same(statusAt, ['polling'], 'delivered by polling')

  await eventually(() => client.status === 'open', 20_000)
  t.equal(client.getConnectionStatus().mode, 'websocket')
  await publish(own, { channel: 'user:alice', data: 'live' })
  await eventually(() => seen.messages.length === 2)
  await sleep(100)
  t.same(seen.messages.map((message) => message.data), ['polled', 'live'], 'no loss, no duplicate across the switch')
  t.same(statusAt, ['polling', 'open'])
})
