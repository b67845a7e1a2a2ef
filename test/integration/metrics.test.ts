import t from 'tap'
import { createServer } from 'node:net'
import { once } from 'node:events'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, testConfig, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish } from '../helpers/relay.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'

/**
 * GET /metrics (SPEC §3, issue 5): after a known flow, the exposition text holds the
 * exact counts — parsed from the text a Prometheus server would scrape.
 */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

type Labels = Record<string, string>

/** Samples of a Prometheus text exposition, keyed `name{a="x",b="y"}` with labels sorted. */
class Exposition {
  readonly text: string
  readonly samples = new Map<string, number>()
  readonly labelValues = new Set<string>()

  constructor (text: string) {
    this.text = text
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue
      const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
      if (match === null) throw new Error(`not an exposition line: ${line}`)
      const labels: Labels = {}
      for (const [, name, value] of (match[2] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[name!] = value!
        this.labelValues.add(value!)
      }
      this.samples.set(Exposition.key(match[1]!, labels), Number(match[3]))
    }
  }

  static key (name: string, labels: Labels = {}): string {
    const pairs = Object.keys(labels).sort().map((label) => `${label}="${labels[label]!}"`)
    return `${name}{${pairs.join(',')}}`
  }

  /** The sample's value; undefined when the series is absent. */
  get (name: string, labels: Labels = {}): number | undefined {
    return this.samples.get(Exposition.key(name, labels))
  }

  /** Several series of one metric at once, for one strictSame per metric. */
  values (name: string, label: string, keys: readonly string[], fixed: Labels = {}): Record<string, number | undefined> {
    return Object.fromEntries(keys.map((key) => [key, this.get(name, { ...fixed, [label]: key })]))
  }
}

async function scrape (url: string): Promise<Exposition> {
  const response = await fetch(url)
  if (response.status !== 200) throw new Error(`scrape answered ${response.status}`)
  return new Exposition(await response.text())
}

async function session (gateway: Gateway, ticket: string, origin?: string): Promise<TestClient> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`, origin === undefined ? {} : { headers: { origin } })
  t.teardown(() => { client.socket.terminate() })
  return client
}

const RECEIVED = ['ping', 'subscribe', 'unsubscribe', 'send', 'invalid', 'binary'] as const
const SENT = ['session_established', 'pong', 'subscribed', 'unsubscribed', 'message', 'ack', 'error'] as const
const OUTCOMES = ['established', '4401', '4403', '1013', '1012', '403'] as const
const CLOSES = ['SLOW_CONSUMER', 'RATE_LIMITED', 'SESSION_REVOKED', 'SERVER_RESTART', 'BINARY_NOT_SUPPORTED', 'HEARTBEAT_TIMEOUT'] as const
const REJECTS = ['missing', 'invalid', 'expired', 'engine_unavailable', 'revoked'] as const

function zeroes (keys: readonly string[]): Record<string, number> {
  return Object.fromEntries(keys.map((key) => [key, 0]))
}

await t.test('a known flow shows exact counts on every metric', async (t) => {
  const gateway = await startGateway(t, {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: 'metrics:',
    ALLOWED_ORIGINS: 'https://app.example.com',
    SHUTDOWN_GRACE_MS: '400'
  })
  const metricsUrl = `${gateway.baseUrl}/metrics`

  await t.test('before any traffic: every bounded series is present at 0', async (t) => {
    const before = await scrape(metricsUrl)
    t.strictSame(before.values('rtgw_tickets_rejected_total', 'reason', REJECTS), zeroes(REJECTS))
    t.strictSame(before.values('rtgw_ws_connects_total', 'outcome', OUTCOMES), zeroes(OUTCOMES))
    t.strictSame(before.values('rtgw_ws_server_closes_total', 'reason', CLOSES), zeroes(CLOSES))
    t.strictSame(before.values('rtgw_ws_messages_received_total', 'type', RECEIVED), zeroes(RECEIVED))
    t.strictSame(before.values('rtgw_ws_messages_sent_total', 'type', SENT), zeroes(SENT))
    t.equal(before.get('rtgw_tickets_issued_total'), 0)
    t.equal(before.get('rtgw_relay_gap_fills_total'), 0)
    t.equal(before.get('rtgw_publish_duration_seconds_count', { outcome: 'ok' }), 0)
    t.equal(before.get('rtgw_engine_ready', { engine: 'redis' }), 1, 'Redis is connected')
    t.equal(before.get('rtgw_draining'), 0)
    t.equal(before.get('rtgw_process_cpu_user_seconds_total'), undefined, 'no process metrics from an in-process test instance')
  })

  // Three tickets; one refused request.
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['chat:*'] })
  const [t1, t2, t3] = [await requestTicket(gateway, token), await requestTicket(gateway, token), await requestTicket(gateway, token)]
  t.equal((await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST' })).status, 401)

  // Five upgrades: two sessions, a reused and a missing ticket (4401), a foreign Origin (403).
  const a = await session(gateway, t1!, 'https://app.example.com')
  t.equal((await a.frame(0)).type, 'session_established')
  const reused = await session(gateway, t1!)
  t.same(await reused.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  const missing = new TestClient(gateway.wsUrl)
  t.same(await missing.closed, { code: 4401, reason: 'WS_TICKET_MISSING' })
  const foreign = await session(gateway, t2!, 'https://evil.example.com')
  t.equal(await foreign.opened, false)
  t.equal(foreign.unexpectedStatus, 403)
  const b = await session(gateway, t2!)
  t.equal((await b.frame(0)).type, 'session_established', 'the refused Origin did not consume the ticket')

  // One frame of each kind from A.
  a.send({ type: 'ping', id: 1 })
  t.match(await a.frame(1), { type: 'pong', id: 1 })
  a.send({ type: 'subscribe', channel: 'chat:room', id: 2 })
  t.match(await a.frame(2), { type: 'subscribed', channel: 'chat:room', id: 2 })
  a.send('not json')
  t.match(await a.frame(3), { type: 'error', code: 'BAD_MESSAGE' })
  a.send({ type: 'send', id: 's1', data: { n: 1 } })
  t.match(await a.frame(4), { type: 'ack', id: 's1' })

  await t.test('mid-flow gauges', async (t) => {
    const mid = await scrape(metricsUrl)
    t.equal(mid.get('rtgw_connections_open'), 2)
    t.equal(mid.get('rtgw_relay_channels'), 1, 'one channel listened to')
  })

  // Six messages in five publish requests (one a batch of two) ...
  for (const data of [1, 2]) t.equal((await publish(gateway, { channel: 'chat:room', data })).status, 200)
  t.equal((await publish(gateway, { messages: [{ channel: 'chat:room', data: 3 }, { channel: 'chat:room', data: 4 }] })).status, 200)
  await a.frame(8)
  // ... two of them across a pub/sub gap, which the relay fills from history.
  await gateway.app.engine.unlisten('chat:room')
  t.equal((await publish(gateway, { channel: 'chat:room', data: 'missed' })).status, 200)
  await gateway.app.engine.listen('chat:room')
  t.equal((await publish(gateway, { channel: 'chat:room', data: 'after' })).status, 200)
  await a.frame(10)
  t.same(a.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data), [1, 2, 3, 4, 'missed', 'after'])
  a.send({ type: 'unsubscribe', channel: 'chat:room', id: 3 })
  t.match(await a.frame(11), { type: 'unsubscribed', id: 3 })

  // B sends a binary frame: closed 1003 by the server.
  b.socket.send(Buffer.from([1, 2, 3]))
  t.same(await b.closed, { code: 1003, reason: 'BINARY_NOT_SUPPORTED' })
  // An unknown path with a ticket in its query.
  t.equal((await fetch(`${gateway.baseUrl}/nope?ticket=supersecretticket`)).status, 404)

  // Drain: A gets 1012 (counted), the next upgrade is refused with 1012 (ticket kept).
  await gateway.app.drain()
  t.same(await a.closed, { code: 1012, reason: 'SERVER_RESTART' })
  const late = await session(gateway, t3!)
  t.same(await late.closed, { code: 1012, reason: 'SERVER_RESTART' })
  await eventually(() => gateway.app.hub.size === 0)

  const after = await scrape(metricsUrl)

  await t.test('tickets', async (t) => {
    t.equal(after.get('rtgw_tickets_issued_total'), 3)
    t.equal(after.get('rtgw_tickets_consumed_total'), 2)
    t.strictSame(after.values('rtgw_tickets_rejected_total', 'reason', REJECTS), { missing: 1, invalid: 1, expired: 0, engine_unavailable: 0, revoked: 0 })
  })

  await t.test('connects, sessions and server closes', async (t) => {
    t.strictSame(after.values('rtgw_ws_connects_total', 'outcome', OUTCOMES), { established: 2, 4401: 2, 4403: 0, 1013: 0, 1012: 1, 403: 1 })
    t.equal(after.get('rtgw_connections_open'), 0)
    t.strictSame(after.values('rtgw_ws_server_closes_total', 'reason', CLOSES), { ...zeroes(CLOSES), SERVER_RESTART: 1, BINARY_NOT_SUPPORTED: 1 })
  })

  await t.test('messages in and out by frame type', async (t) => {
    t.strictSame(after.values('rtgw_ws_messages_received_total', 'type', RECEIVED), { ping: 1, subscribe: 1, unsubscribe: 1, send: 1, invalid: 1, binary: 1 })
    t.strictSame(after.values('rtgw_ws_messages_sent_total', 'type', SENT), {
      session_established: 2,
      pong: 1,
      subscribed: 1,
      unsubscribed: 1,
      message: 6,
      ack: 1,
      error: 3 // BAD_MESSAGE, and the error frames before the two 4401s
    })
  })

  await t.test('relay: publish latency and gap fills', async (t) => {
    t.equal(after.get('rtgw_publish_duration_seconds_count', { outcome: 'ok' }), 6, 'one observation per message, batches included')
    t.equal(after.get('rtgw_publish_duration_seconds_count', { outcome: 'error' }), 0)
    t.equal(after.get('rtgw_publish_duration_seconds_bucket', { outcome: 'ok', le: '+Inf' }), 6)
    t.ok((after.get('rtgw_publish_duration_seconds_sum', { outcome: 'ok' }) ?? 0) > 0)
    t.equal(after.get('rtgw_relay_gap_fills_total'), 1)
    t.equal(after.get('rtgw_relay_channels'), 0, 'the last subscriber left')
  })

  await t.test('engine and drain state, read at scrape time', async (t) => {
    t.equal(after.get('rtgw_engine_ready', { engine: 'redis' }), 1)
    t.equal(after.get('rtgw_draining'), 1)
  })

  await t.test('Redis command latency by command', async (t) => {
    const count = (command: string): number => after.get('rtgw_redis_command_duration_seconds_count', { command, outcome: 'ok' }) ?? 0
    t.equal(count('script:store-ticket-counted'), 3, 'one command per ticket: the store and its user\'s count (issue 14)')
    t.equal(count('set') + count('script:count-hit'), 0, 'no separate SET or counter script')
    t.equal(count('getdel') + count('script:consume-ticket'), 3, 'one consume per presented well-formed ticket (not the missing one, not while draining)')
    t.equal(count('script:publish'), 6)
    t.equal(count('script:append-inbound'), 1)
  })

  await t.test('HTTP requests by route pattern and status', async (t) => {
    const count = (method: string, route: string, status: number): number | undefined =>
      after.get('rtgw_http_request_duration_seconds_count', { method, route, status_code: String(status) })
    t.equal(count('POST', '/ws-ticket', 200), 3)
    t.equal(count('POST', '/ws-ticket', 401), 1)
    t.equal(count('POST', '/v1/publish', 200), 5)
    t.equal(count('GET', '/ws', 403), 1, 'the refused Origin; upgrades themselves are counted by rtgw_ws_connects_total')
    t.equal(count('GET', 'unmatched', 404), 1, 'no route: labelled unmatched, never by its URL')
    t.equal(count('GET', '/metrics', 200), 2, 'the earlier scrapes (this one is counted once answered)')
  })

  await t.test('no label holds a user, session, channel, connection or URL', async (t) => {
    for (const secret of ['alice', 's1', 'chat:room', 'supersecretticket', '/nope']) {
      t.notOk(after.text.includes(secret), `${secret} is nowhere in the exposition`)
    }
    t.notOk([...after.labelValues].some((value) => value.includes('?')), 'no query string in any label')
  })
})

await t.test('Redis down: 1013 and engine_unavailable counted, engine_ready 0, nothing published', async (t) => {
  const down = await startGateway(t, { REDIS_URL: 'redis://127.0.0.1:1' }, { waitForEngine: false })
  const client = new TestClient(`${down.wsUrl}?ticket=${'A'.repeat(43)}`)
  t.teardown(() => { client.socket.terminate() })
  t.same(await client.closed, { code: 1013, reason: 'WS_TICKET_REDIS_NOT_READY' })
  t.equal((await publish(down, { channel: 'chat:x', data: 1 })).status, 503)
  const exposition = await scrape(`${down.baseUrl}/metrics`)
  t.strictSame(exposition.values('rtgw_ws_connects_total', 'outcome', OUTCOMES), { ...zeroes(OUTCOMES), 1013: 1 })
  t.strictSame(exposition.values('rtgw_tickets_rejected_total', 'reason', REJECTS), { ...zeroes(REJECTS), engine_unavailable: 1 })
  t.equal(exposition.get('rtgw_engine_ready', { engine: 'redis' }), 0)
  t.equal(exposition.get('rtgw_http_request_duration_seconds_count', { method: 'POST', route: '/v1/publish', status_code: '503' }), 1)
  t.equal(exposition.get('rtgw_publish_duration_seconds_count', { outcome: 'ok' }), 0, 'refused before the engine was asked')
  t.equal(exposition.get('rtgw_publish_duration_seconds_count', { outcome: 'error' }), 0)
})

await t.test('a slow consumer close is counted once', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'metrics-slow:', WS_MAX_BUFFERED_BYTES: '65536', WS_MESSAGE_BURST: '1000' })
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'bob', sessionId: 's2', channels: ['chat:*'] })
  const slow = await session(gateway, await requestTicket(gateway, token))
  await slow.frame(0)
  slow.send({ type: 'subscribe', channel: 'chat:firehose' })
  await slow.frame(1)
  // The client stops reading: the server's socket buffer fills, then its queue grows.
  const raw = (slow.socket as unknown as { _socket: { pause: () => void, resume: () => void } })._socket
  raw.pause()
  const payload = 'x'.repeat(50_000)
  for (let batch = 0; batch < 6; batch += 1) {
    t.equal((await publish(gateway, { messages: Array.from({ length: 15 }, () => ({ channel: 'chat:firehose', data: payload })) })).status, 200)
  }
  raw.resume()
  t.same(await slow.closed, { code: 1013, reason: 'SLOW_CONSUMER' })
  const exposition = await scrape(`${gateway.baseUrl}/metrics`)
  t.strictSame(exposition.values('rtgw_ws_server_closes_total', 'reason', CLOSES), { ...zeroes(CLOSES), SLOW_CONSUMER: 1 })
})

async function closedPort (port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/metrics`)
    return false
  } catch {
    return true
  }
}

await t.test('METRICS_PORT: /metrics only on the internal port, which opens and closes with the app', async (t) => {
  const config = testConfig({ METRICS_PORT: '0' })
  const app = await buildApp(config, { engine: configuredEngine(config) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  let closed = false
  t.teardown(async () => { if (!closed) await app.close() })
  const mainPort = (app.server.address() as { port: number }).port
  const metricsServer = app.metricsServer
  if (metricsServer === null) throw new Error('no metrics server')
  const metricsPort = (metricsServer.server.address() as { port: number }).port
  t.not(metricsPort, mainPort)

  const main = await fetch(`http://127.0.0.1:${mainPort}/metrics`)
  t.equal(main.status, 404, 'the main port does not serve /metrics')
  t.match(await main.json(), { error: 'NOT_FOUND', code: 'NOT_FOUND' })

  const internal = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
  t.equal(internal.status, 200)
  t.match(internal.headers.get('content-type'), /^text\/plain/)
  const exposition = new Exposition(await internal.text())
  t.equal(exposition.get('rtgw_tickets_issued_total'), 0)
  t.equal(exposition.get('rtgw_engine_ready', { engine: 'memory' }), 1)
  t.equal(exposition.get('rtgw_http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status_code: '404' }), 1,
    'requests to the main port are measured; the internal port\'s are not')

  const other = await fetch(`http://127.0.0.1:${metricsPort}/livez?ticket=supersecretticket`)
  t.equal(other.status, 404, 'the internal port serves nothing else')
  const body = await other.text()
  t.notOk(body.includes('supersecretticket'), 'its 404 does not echo the URL')
  t.match(JSON.parse(body), { error: 'NOT_FOUND', code: 'NOT_FOUND' })

  const docs = await (await fetch(`http://127.0.0.1:${mainPort}/docs/json`)).json() as { paths: Record<string, unknown> }
  t.notOk('/metrics' in docs.paths, 'the public API document does not list /metrics')

  await app.close()
  closed = true
  t.ok(await closedPort(metricsPort), 'the internal port closed with the app')
})

await t.test('METRICS_PORT already taken: the app fails to start instead of running without metrics', async (t) => {
  const blocker = createServer()
  blocker.listen(0, '127.0.0.1')
  await once(blocker, 'listening')
  t.teardown(() => { blocker.close() })
  const port = (blocker.address() as { port: number }).port
  const config = testConfig({ METRICS_PORT: String(port) })
  const app = await buildApp(config, { engine: configuredEngine(config) })
  t.teardown(async () => { await app.close() })
  await t.rejects(app.listen({ port: 0, host: '127.0.0.1' }), { code: 'EADDRINUSE' })
})

await t.test('process metrics (event-loop lag included) come only with processMetrics', async (t) => {
  const config = testConfig()
  const app = await buildApp(config, { engine: configuredEngine(config), processMetrics: true })
  t.teardown(async () => { await app.close() })
  const response = await app.inject({ method: 'GET', url: '/metrics' })
  const exposition = new Exposition(response.body)
  for (const name of ['rtgw_nodejs_eventloop_lag_seconds', 'rtgw_nodejs_eventloop_lag_p99_seconds', 'rtgw_process_cpu_user_seconds_total', 'rtgw_process_resident_memory_bytes']) {
    t.type(exposition.get(name), 'number', `${name} is exported`)
  }
})

