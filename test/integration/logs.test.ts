import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { requestTicket, startGateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'

/** Tickets, JWTs and full query strings never appear in logs (SPEC §4). */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const lines: string[] = []
const logStream = { write (msg: string): void { lines.push(msg) } }

const gateway = await startGateway(t, { REDIS_URL: redis.url, LOG_LEVEL: 'debug' }, { logStream })
const shortLived = await startGateway(t, { REDIS_URL: redis.url, LOG_LEVEL: 'debug', TICKET_TTL_SECONDS: '1' }, { logStream })

const records = (): Array<Record<string, unknown>> => lines.map((line) => JSON.parse(line) as Record<string, unknown>)

// Everything secret the flow below hands to the gateway.
const jwt = await userToken('alice', 's1')
const otherJwt = await userToken('bob', 's2')
const forgedJwt = await userToken('mallory', 's3', { secret: 'another-secret-of-at-least-thirty-two-chars' })
const secrets: string[] = [jwt, otherJwt, forgedJwt]
const traceId = 'trace-logs-test.0001'

void t.test('a full flow through the gateway', async (t) => {
  // 1. Tickets issued with a real JWT (one carrying a caller request id).
  const issued = await fetch(`${gateway.baseUrl}/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}`, 'x-request-id': traceId }
  })
  t.equal(issued.status, 200)
  t.equal(issued.headers.get('x-request-id'), traceId, 'the request id is echoed')
  const ticket = ((await issued.json()) as { ticket: string }).ticket
  const unusedTicket = await requestTicket(gateway, otherJwt)
  const expiringTicket = await requestTicket(shortLived, jwt)
  secrets.push(ticket, unusedTicket, expiringTicket)

  // 2. A session with it, then the same ticket again (4401), then a bad frame on the session.
  const client = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
  t.equal((await client.frame(0)).type, 'session_established')
  const reuse = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
  t.same(await reuse.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  client.send('{"type":"ping", not json')
  t.match(await client.frame(1), { type: 'error', code: 'BAD_MESSAGE' })

  // 3. Unknown routes carrying a ticket and a token in the query, over HTTP and as an upgrade.
  for (const query of [`ticket=${ticket}&token=${jwt}`, `ticket=${unusedTicket}&token=${otherJwt}`]) {
    const unknown = await fetch(`${gateway.baseUrl}/nope?${query}`)
    t.equal(unknown.status, 404)
    await unknown.arrayBuffer()
  }
  const unknownUpgrade = new TestClient(`${gateway.baseUrl.replace('http:', 'ws:')}/nope?ticket=${unusedTicket}&token=${otherJwt}`)
  t.equal(await unknownUpgrade.opened, false)
  t.equal(unknownUpgrade.unexpectedStatus, 404)

  // 4. A ticket request with a token signed by someone else.
  const forged = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${forgedJwt}` } })
  t.equal(forged.status, 401)
  t.match(await forged.json(), { code: 'INVALID_TOKEN' })

  // 5. Garbage, unknown and expired tickets on the upgrade.
  const garbage = new TestClient(`${gateway.wsUrl}?ticket=not-a-ticket&token=${otherJwt}`)
  t.same(await garbage.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  const unknownTicket = 'Q'.repeat(43)
  secrets.push(unknownTicket)
  const stranger = new TestClient(`${gateway.wsUrl}?ticket=${unknownTicket}`)
  t.same(await stranger.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  await new Promise((resolve) => setTimeout(resolve, 1100))
  const expired = new TestClient(`${shortLived.wsUrl}?ticket=${expiringTicket}`)
  t.same(await expired.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })

  // 6. Close the session, and give the server a moment to log it.
  client.close()
  await client.closed
  await new Promise((resolve) => setTimeout(resolve, 100))
})

void t.test('the flow produced logs at debug level', async (t) => {
  t.ok(lines.length > 10, `${lines.length} lines captured`)
  t.ok(records().some((record) => record.level === 20), 'debug lines are included')
})

void t.test('no ticket, JWT, query string or Authorization value appears in any log line', async (t) => {
  const all = lines.join('')
  for (const secret of secrets) t.notOk(all.includes(secret), `secret ${secret.slice(0, 8)}… is absent`)
  // Parts of a JWT (a header or a payload) are as telling as the whole token.
  for (const token of [jwt, otherJwt, forgedJwt]) {
    for (const part of token.split('.')) t.notOk(all.includes(part), 'no JWT segment')
  }
  t.notOk(all.includes('eyJ'), 'nothing JWT-shaped')
  t.notOk(all.includes('ticket='), 'no ticket query')
  t.notOk(all.includes('token='), 'no token query')
  t.notOk(all.includes('?'), 'no query string at all')
  t.notOk(/bearer/i.test(all), 'no Authorization value')
})

void t.test('request lines carry the path only, and the caller request id as traceId', async (t) => {
  const requestLines = records().filter((record) => record.event === 'http.request')
  const ticketLine = requestLines.find((record) => record.traceId === traceId)
  t.ok(ticketLine, 'the line of the traced request')
  t.match(ticketLine, {
    level: 20, // successes at debug; refusals at info (below)
    traceId,
    event: 'http.request',
    req: { method: 'POST', path: '/ws-ticket', id: traceId },
    res: { statusCode: 200 }
  })
  t.equal(typeof ticketLine?.durationMs, 'number')
  t.same(Object.keys(ticketLine?.req as object).sort(), ['id', 'method', 'path'], 'no url, headers or query')

  const notFound = requestLines.find((record) => (record.req as { path?: string }).path === '/nope' && (record.res as { statusCode?: number }).statusCode === 404)
  t.ok(notFound, 'the 404 is logged with its path')
  t.match(requestLines.find((record) => (record.res as { statusCode?: number }).statusCode === 401), {
    level: 30,
    req: { method: 'POST', path: '/ws-ticket' }
  }, 'the 401 is logged with its path')
})

void t.test('rejected tickets are logged with their reason, never the ticket', async (t) => {
  const rejected = records().filter((record) => record.event === 'ticket.rejected')
  t.same(rejected.map((record) => record.reason).sort(), ['expired', 'invalid', 'invalid', 'invalid'],
    'reused, garbage, unknown (invalid) and expired')
  for (const record of rejected) {
    t.equal(typeof record.traceId, 'string', 'with the request id')
    t.notOk('ticket' in record)
  }
})

void t.test('the session lifecycle is logged at debug level with its connectionId', async (t) => {
  const established = records().filter((record) => record.event === 'ws.session_established')
  t.equal(established.length, 1)
  t.match(established[0], { level: 20, userId: 'alice', connectionId: String })
  const closed = records().filter((record) => record.event === 'ws.closed')
  t.equal(closed.length, 1)
  t.match(closed[0], { level: 20, code: 1005, connectionId: established[0]?.connectionId })
})

void t.test('LOG_LEVEL bounds verbosity: quiet routes never log below the configured level', async (t) => {
  const quiet: string[] = []
  const gateway = await startGateway(t, { REDIS_URL: redis.url, LOG_LEVEL: 'error' }, { logStream: { write (msg: string): void { quiet.push(msg) } } })
  await gateway.app.drain()
  const readiness = await fetch(`${gateway.baseUrl}/readyz`)
  t.equal(readiness.status, 503, 'a failing readiness probe')
  await readiness.arrayBuffer()
  for (const path of ['/livez', '/metrics']) {
    const response = await fetch(`${gateway.baseUrl}${path}`)
    t.equal(response.status, 200, path)
    await response.arrayBuffer()
  }
  const below = quiet.map((line) => JSON.parse(line) as { level: number, event?: string }).filter((line) => line.level < 50)
  t.same(below, [], 'nothing below error is logged at LOG_LEVEL=error')
})
