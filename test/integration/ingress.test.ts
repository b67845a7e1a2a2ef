import t from 'tap'
import { request as httpRequest } from 'node:http'
import { RedisServer } from '../helpers/redis-server.js'
import { requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'

/** Running behind an ingress, for browser apps on other origins (SPEC §13): CORS, headers, malformed requests. */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const lines: string[] = []
const logStream = { write (msg: string): void { lines.push(msg) } }
const APP = 'https://app.example.com'
const gateway = await startGateway(t, {
  REDIS_URL: redis.url,
  REDIS_KEY_PREFIX: 'ingress:',
  ALLOWED_ORIGINS: `${APP},https://other.example.com`,
  CORS_ORIGINS: APP,
  LOG_LEVEL: 'info'
}, { logStream })

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: string }

/** A raw HTTP/1.1 request: fetch cannot send a malformed URL or an upgrade. */
async function raw (gw: Gateway, path: string, headers: Record<string, string> = {}): Promise<Raw> {
  const url = new URL(gw.baseUrl)
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: 'GET', headers, agent: false })
    req.on('response', (response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => { body += chunk.toString() })
      response.on('end', () => { resolve({ status: response.statusCode ?? 0, headers: response.headers, body }) })
    })
    // An upgrade that is accepted is not what these tests send.
    req.on('upgrade', () => { reject(new Error('unexpected upgrade')) })
    req.on('error', reject)
    req.end()
  })
}

const corsHeaders = (headers: Headers): string[] => [...headers.keys()].filter((name) => name.startsWith('access-control-')).sort()

void t.test('CORS preflight for POST /ws-ticket: allowed origin answered, others get no CORS header', async (t) => {
  const preflight = async (path: string, origin: string): Promise<Response> => await fetch(`${gateway.baseUrl}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' }
  })
  const allowed = await preflight('/ws-ticket', APP)
  t.equal(allowed.status, 204)
  t.equal(allowed.headers.get('access-control-allow-origin'), APP, 'the origin itself, never *')
  t.equal(allowed.headers.get('access-control-allow-methods'), 'GET, POST')
  t.equal(allowed.headers.get('access-control-allow-headers'), 'Authorization, Content-Type')
  t.equal(allowed.headers.get('access-control-allow-credentials'), null, 'no cookies: tokens travel in Authorization')
  t.match(allowed.headers.get('vary') ?? '', /Origin/i)

  const poll = await preflight('/v1/poll', APP)
  t.equal(poll.status, 204, 'GET /v1/poll is preflighted too')
  t.equal(poll.headers.get('access-control-allow-origin'), APP)

  for (const [path, origin, why] of [
    ['/ws-ticket', 'https://evil.example.com', 'an origin not listed'],
    ['/ws-ticket', 'https://other.example.com', 'an origin allowed for WebSockets but not in CORS_ORIGINS'],
    ['/ws-ticket', 'https://app.example.com.evil.com', 'no prefix tricks'],
    ['/v1/publish', APP, 'a backend route']
  ] as const) {
    const refused = await preflight(path, origin)
    t.equal(refused.status, 404, `${why}: no preflight answer`)
    t.same(corsHeaders(refused.headers), [], `${why}: no CORS header at all`)
  }
})

void t.test('a cross-origin ticket request: CORS headers, Retry-After readable, no-store, nosniff', async (t) => {
  const token = await userToken('cora', 'c1')
  const issued = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { origin: APP, authorization: `Bearer ${token}` } })
  t.equal(issued.status, 200)
  t.equal(issued.headers.get('access-control-allow-origin'), APP)
  t.equal(issued.headers.get('access-control-expose-headers'), 'Retry-After, X-Request-Id', 'a page can read Retry-After and the request id')
  t.equal(issued.headers.get('cache-control'), 'no-store', 'a ticket is never cached')
  t.equal(issued.headers.get('x-content-type-options'), 'nosniff')
  await issued.arrayBuffer()

  const other = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { origin: 'https://evil.example.com', authorization: `Bearer ${token}` } })
  t.same(corsHeaders(other.headers), [], 'another origin: the browser will not hand the answer to the page')
  await other.arrayBuffer()

  const health = await fetch(`${gateway.baseUrl}/livez`, { headers: { origin: APP } })
  t.same(corsHeaders(health.headers), [], 'routes other than tickets and polls have no CORS')
  t.equal(health.headers.get('x-content-type-options'), 'nosniff', 'nosniff on every answer')
})

void t.test('a malformed URL is answered in the §3 envelope and never echoed, nor logged', async (t) => {
  lines.length = 0
  const answer = await raw(gateway, '/%zz?ticket=secret-ticket-value', { 'x-request-id': 'bad-url-1' })
  t.equal(answer.status, 400)
  t.equal(answer.headers['x-request-id'], 'bad-url-1')
  t.same(JSON.parse(answer.body), { error: 'BAD_REQUEST', code: 'BAD_REQUEST', message: 'Malformed URL', traceId: 'bad-url-1' })
  t.notOk(answer.body.includes('secret'), 'the body does not quote the URL')
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.notOk(lines.some((line) => line.includes('secret-ticket-value')), 'no log line carries the query')
})

void t.test('4xx request lines carry the error code', async (t) => {
  lines.length = 0
  const refused = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: 'Bearer not.a.jwt' } })
  t.equal(refused.status, 401)
  await refused.arrayBuffer()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const line = lines.map((entry) => JSON.parse(entry) as Record<string, unknown>).find((entry) => entry.event === 'http.request')
  t.equal(line?.code, 'INVALID_TOKEN')
  t.equal((line?.res as { statusCode?: number } | undefined)?.statusCode, 401)
})

void t.test('a malformed upgrade is refused 400 before the ticket is spent: the same ticket then connects', async (t) => {
  const ticket = await requestTicket(gateway, await userToken('uma', 'u1'))
  const upgrade = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13' }
  for (const [headers, message] of [
    [{ ...upgrade, 'sec-websocket-key': 'too-short' }, 'Missing or invalid Sec-WebSocket-Key header'],
    [{ ...upgrade, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '12' }, 'Missing or invalid Sec-WebSocket-Version header'],
    [{ ...upgrade, 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': 'a, (b)' }, 'Invalid Sec-WebSocket-Protocol header']
  ] as const) {
    const answer = await raw(gateway, `/ws?ticket=${ticket}`, headers)
    t.equal(answer.status, 400, message)
    t.same({ ...JSON.parse(answer.body) as object, traceId: undefined }, { error: 'BAD_REQUEST', code: 'BAD_REQUEST', message, traceId: undefined })
  }
  const client = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
  t.equal((await client.frame(0)).type, 'session_established', 'the ticket was not consumed by the refused upgrades')
  client.close()
  await client.closed
})
