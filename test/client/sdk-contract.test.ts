import t from 'tap'
import WebSocket from 'ws'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, startGateway } from '../helpers/gateway.js'
import { publish } from '../helpers/relay.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { rejectionOf, sleep } from '../helpers/async.js'
import type { ChannelMessage } from '../../packages/client/src/realtime-client.js'
import { ConnectionError, GatewayClientError } from '../../packages/client/src/errors.js'
import type { WebSocketConstructor, WebSocketLike } from '../../packages/client/src/websocket.js'
import { clientOf } from '../helpers/sdk-client.js'

// Issue 11 point 4: the SDK fixes, each against a real gateway on a real Redis.
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const gatewayEnv = { REDIS_URL: redis.url, TICKET_RATE_LIMIT_PER_USER: '10000', AUTH_FAILURE_LIMIT_PER_IP: '10000', SHUTDOWN_GRACE_MS: '500' }
const gateway = await startGateway(t, gatewayEnv)


/** fetch that records each ticket it got, in order; `to` redirects ticket requests to another origin. */
function ticketRecorder (to?: string): { fetch: typeof fetch, tickets: string[] } {
  const tickets: string[] = []
  return {
    tickets,
    fetch: async (input, init) => {
      const url = String(input)
      if (!url.endsWith('/ws-ticket')) return await fetch(input, init)
      const response = await fetch(to === undefined ? url : `${to}/ws-ticket`, init)
      if (response.status === 200) tickets.push(((await response.clone().json()) as { ticket: string }).ticket)
      return response
    }
  }
}

/** The `ws` class, recording the ticket of every socket opened and every frame sent. */
function recordingWebSocket (): { WebSocket: WebSocketConstructor, tickets: string[], sent: string[] } {
  const tickets: string[] = []
  const sent: string[] = []
  class Recorded extends WebSocket {
    constructor (url: string) {
      super(url)
      tickets.push(new URL(url).searchParams.get('ticket') ?? '')
    }

    override send (data: string): void {
      sent.push(data)
      super.send(data)
    }
  }
  return { WebSocket: Recorded, tickets, sent }
}

/** A WebSocket that never opens (a gateway whose upgrade never answers); records its tickets. */
function neverOpening (): { WebSocket: WebSocketConstructor, tickets: string[], urls: string[] } {
  const tickets: string[] = []
  const urls: string[] = []
  class NeverOpens implements WebSocketLike {
    readyState = 0
    onopen = null
    onmessage = null
    onclose = null
    onerror = null
    constructor (url: string) {
      urls.push(url)
      tickets.push(new URL(url).searchParams.get('ticket') ?? '')
    }

    send (): void {}
    close (): void { this.readyState = 3 }
  }
  return { WebSocket: NeverOpens, tickets, urls }
}

function subscribeFrames (sent: string[]): Array<{ channel: string, since?: string }> {
  return sent.map((text) => JSON.parse(text) as { type: string, channel: string, since?: string }).filter((frame) => frame.type === 'subscribe')
}

await t.test('a subscribe refused with REDIS_NOT_READY survives a reconnect during its retry and resolves once Redis is back', async (t) => {
  const ownRedis = await RedisServer.start()
  t.teardown(async () => { await ownRedis.stop() })
  const own = await startGateway(t, { ...gatewayEnv, REDIS_URL: ownRedis.url })
  const proxy = await TcpProxy.start(Number(new URL(own.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  const refusals: string[] = []
  const sockets = recordingWebSocket()
  const client = clientOf(t, proxy.url, {
    WebSocket: sockets.WebSocket,
    backoff: { initialMs: 50, maxMs: 100 },
    // Room for Redis to come back before the ticket retries run out (no switch to polling).
    ticketOptions: { notReadyRetryDelaysMs: [300, 600, 1200, 2400, 4800] },
    logger: { info: (message, details) => { if (message.includes('subscribe refused')) refusals.push(String(details?.code)) } }
  })
  const messages: ChannelMessage[] = []
  const errors: string[] = []
  client.on('message', (message) => { messages.push(message) })
  client.on('error', (error) => { errors.push(error.code) })
  await client.connect()

  await ownRedis.kill()
  await eventually(() => !own.app.engine.isReady())
  let settled = false
  const subscribed = client.subscribe('user:alice').finally(() => { settled = true })
  await eventually(() => refusals.length >= 1)
  t.same(refusals.slice(0, 1), ['REDIS_NOT_READY'], 'refused with a retryable code, retry pending')

  // The socket goes while the retry is pending; the new session must resubscribe the channel.
  proxy.dropAll()
  await eventually(() => client.status !== 'open')
  t.notOk(settled, 'still pending, not forgotten')
  await ownRedis.start()
  await eventually(() => own.app.engine.isReady())
  t.match(await subscribed, { channel: 'user:alice', recovered: true }, 'the promise resolves when the subscribe finally succeeds')
  t.equal(client.status, 'open')
  t.ok(sockets.tickets.length >= 2, 'on a new socket')
  await publish(own, { channel: 'user:alice', data: 'after' })
  await eventually(() => messages.length === 1)
  t.same(messages.map((message) => message.data), ['after'])
  t.notOk(errors.includes('REDIS_NOT_READY'), 'a retryable refusal is never reported as a failure')
  const frames = subscribeFrames(sockets.sent)
  t.ok(frames.length >= 2 && frames.every((frame) => frame.channel === 'user:alice'), `${frames.length} subscribe frames, all for the channel`)
})

await t.test('connect timeouts with a WebSocket that never opens: N attempts, N tickets, N distinct sockets', async (t) => {
  const recorder = ticketRecorder()
  const sockets = neverOpening()
  const client = clientOf(t, gateway.baseUrl, { fetch: recorder.fetch, WebSocket: sockets.WebSocket, connectTimeoutMs: 100, maxReconnectAttempts: 3, backoff: { initialMs: 10, maxMs: 10 } })
  const errors: GatewayClientError[] = []
  client.on('error', (error) => { errors.push(error) })
  const first = await rejectionOf(client.connect())
  t.ok(first instanceof ConnectionError)
  await eventually(() => client.status === 'closed')
  t.same(errors.map((error) => error.code), ['CONNECT_TIMEOUT', 'CONNECT_TIMEOUT', 'CONNECT_TIMEOUT', 'CONNECT_TIMEOUT', 'RECONNECT_FAILED'])
  t.equal(recorder.tickets.length, 4, 'one POST /ws-ticket per attempt')
  t.equal(sockets.tickets.length, 4, 'one upgrade per attempt')
  t.same(sockets.tickets, recorder.tickets, 'each attempt presents the ticket fetched for it')
  t.equal(new Set(sockets.tickets).size, 4, 'no ticket presented twice')

  const timeout = errors[0]!
  const wsUrl = `${gateway.wsUrl}`
  t.equal(timeout.message, `the connection to ${wsUrl} closed with 1006 (CONNECT_TIMEOUT: no session_established within 100 ms)`)
  t.ok(timeout.cause instanceof Error, 'cause set')
  t.match(errors.at(-1), { message: /^gave up after 3 failed attempts; the last: the connection to ws:\/\/127\.0\.0\.1:\d+\/ws closed/ })
  t.notOk(errors.some((error) => error.message.includes('ticket=') || sockets.tickets.some((ticket) => error.message.includes(ticket))), 'no ticket in a message')
})

await t.test('connect timeouts through a proxy that swallows the upgrade answer: fresh ticket per attempt, then open on the next', async (t) => {
  const proxy = await TcpProxy.start(Number(new URL(gateway.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  // Tickets straight from the gateway; only the upgrade goes through the proxy.
  const recorder = ticketRecorder(gateway.baseUrl)
  const sockets = recordingWebSocket()
  const client = clientOf(t, proxy.url, { fetch: recorder.fetch, WebSocket: sockets.WebSocket, connectTimeoutMs: 300, backoff: { initialMs: 20, maxMs: 20 } })
  const errors: string[] = []
  client.on('error', (error) => { errors.push(error.code) })
  // The gateway gets each upgrade (and consumes its ticket); its answer never comes back.
  proxy.freeze('downstream')
  void client.connect().catch(() => {})
  await eventually(() => errors.length >= 2)
  proxy.thaw()
  // Not ready(): an attempt whose upgrade went out while frozen may still time out and reject it.
  await eventually(() => client.status === 'open', 10_000)
  const attempts = sockets.tickets.length
  t.same(errors.slice(0, 2), ['CONNECT_TIMEOUT', 'CONNECT_TIMEOUT'])
  t.ok(attempts >= 3, `${attempts} attempts`)
  t.equal(recorder.tickets.length, attempts, 'exactly one ticket per attempt')
  t.same(sockets.tickets, recorder.tickets, 'each upgrade with the ticket fetched for its attempt')
  t.equal(new Set(sockets.tickets).size, attempts, 'a ticket spent by a timed-out upgrade is never presented again')
  t.equal(errors.filter((code) => code === 'WS_TICKET_INVALID').length, 0, 'no 4401 from a reused ticket')
  t.equal(client.status, 'open')
})

await t.test('ConnectionError names the URL (without query) and keeps the cause', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}`
  const client = clientOf(t, url, { maxReconnectAttempts: 0 })
  const error = await rejectionOf(client.connect())
  t.ok(error instanceof ConnectionError)
  t.match(error, { code: 'NETWORK_ERROR', message: `the gateway could not be reached: POST ${url}/ws-ticket (fetch failed: connect ECONNREFUSED ${url.slice(7)})` })
  t.ok((error as Error).cause instanceof Error, 'cause set')

  // A socket the gateway closes: the ws URL, without the ticket, and the socket's own error as the cause.
  const refused = clientOf(t, gateway.baseUrl, { maxReconnectAttempts: 0 })
  Object.defineProperty(refused.tickets, 'getValidTicket', { value: async () => ({ ticket: 'not-a-ticket', expiresAt: Date.now() + 30_000 }) })
  const closed = await rejectionOf(refused.connect())
  t.match(closed, { code: 'WS_TICKET_INVALID' })
  t.match((closed as Error).message, new RegExp(`^the gateway refused a fresh ticket too; the connection to ${gateway.wsUrl} closed with 4401`))
  t.notOk((closed as Error).message.includes('not-a-ticket'), 'no ticket in the message')
  t.ok((closed as Error).cause !== undefined, 'cause set')
})

await t.test('send() resolves to the ack: the id it went out with, the same after a resend', async (t) => {
  const proxy = await TcpProxy.start(Number(new URL(gateway.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  const client = clientOf(t, proxy.url, { backoff: { initialMs: 20, maxMs: 20 } })
  await client.connect()
  const ack = await client.send({ text: 'hi' })
  t.match(ack, { id: /^[0-9a-f]{16}-\d+$/ })
  proxy.freeze('downstream')
  const pending = client.send({ text: 'again' })
  await sleep(100)
  proxy.thaw()
  proxy.dropAll()
  const resent = await pending
  t.not(resent.id, ack.id)
  t.equal(resent.id.split('-')[0], ack.id.split('-')[0], 'same client prefix')
})

await t.test('subscribe(channel, { since }): replays from that offset first, later resubscribes from the last offset seen', async (t) => {
  const channel = 'user:alice'
  const offsets: string[] = []
  for (const n of [1, 2, 3]) offsets.push(String((await publish(gateway, { channel, data: n })).body.offset))
  const proxy = await TcpProxy.start(Number(new URL(gateway.baseUrl).port))
  t.teardown(async () => { await proxy.close() })
  const sockets = recordingWebSocket()
  const client = clientOf(t, proxy.url, { WebSocket: sockets.WebSocket, backoff: { initialMs: 20, maxMs: 20 } })
  const messages: unknown[] = []
  const lost: string[] = []
  client.on('message', (message) => { messages.push(message.data) })
  client.on('recoveryFailed', ({ channel }) => { lost.push(channel) })
  await client.connect()
  t.match(await client.subscribe(channel, { since: offsets[0] }), { channel, recovered: true })
  await eventually(() => messages.length === 2)
  t.same(messages, [2, 3], 'what came after `since`, in order')

  const sessions = sockets.tickets.length
  proxy.dropAll()
  // A new session, and its resubscribe answered (the message below must come after it).
  await eventually(() => sockets.tickets.length > sessions && client.status === 'open' && subscribeFrames(sockets.sent).length === 2)
  await sleep(100)
  await publish(gateway, { channel, data: 4 })
  await eventually(() => messages.length === 3)
  await sleep(100)
  t.same(messages, [2, 3, 4], 'no duplicate, nothing lost')
  t.same(subscribeFrames(sockets.sent).map((frame) => frame.since), [offsets[0], offsets[2]], 'the explicit since once, then the last offset seen')
  t.same(lost, [])

  const known = await client.subscribe(channel, { since: offsets[0] })
  t.match(known, { channel, recovered: true }, 'an already subscribed channel ignores since')
  t.equal(subscribeFrames(sockets.sent).length, 2, 'and sends nothing')
})

await t.test('subscribe since: a malformed offset is refused at once; one from a lost history is recovered:false', async (t) => {
  const client = clientOf(t, gateway.baseUrl)
  const lost: string[] = []
  client.on('recoveryFailed', ({ channel }) => { lost.push(channel) })
  await client.connect()
  const error = await rejectionOf(client.subscribe('user:alice', { since: 'yesterday' }))
  t.ok(error instanceof GatewayClientError)
  t.match(error, { code: 'BAD_MESSAGE' })
  t.match(await client.subscribe('user:alice', { since: 'gone-epoch:5' }), { channel: 'user:alice', recovered: false })
  t.same(lost, ['user:alice'], 'recoveryFailed tells the app to refetch')
})
