import t from 'tap'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { startGateway, type Gateway } from '../helpers/gateway.js'
import { userToken, tokenWithoutSession } from '../helpers/tokens.js'
import { TicketManager } from '../../packages/client/src/ticket-manager.js'
import { AuthenticationError, ConnectionError, TicketError } from '../../packages/client/src/errors.js'
import { TestClient } from '../helpers/ws-client.js'
import { disconnect } from '../helpers/relay.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const gateway = await startGateway(t, { REDIS_URL: redis.url, TICKET_RATE_LIMIT_PER_USER: '1000' })

/** fetch that counts requests to the gateway. */
function countingFetch (): { fetch: typeof fetch, count: () => number } {
  let count = 0
  return {
    fetch: async (input, init) => { count += 1; return await fetch(input, init) },
    count: () => count
  }
}

function manager (target: Gateway, overrides: Partial<ConstructorParameters<typeof TicketManager>[0]> = {}): TicketManager {
  return new TicketManager({ baseUrl: target.baseUrl, getToken: async () => await userToken(), ...overrides })
}

await t.test('N concurrent getValidTicket() share exactly one HTTP request', async (t) => {
  const counter = countingFetch()
  const tickets = manager(gateway, { fetch: counter.fetch })
  const results = await Promise.all(Array.from({ length: 20 }, async () => await tickets.getValidTicket()))
  t.equal(counter.count(), 1)
  t.equal(new Set(results.map((ticket) => ticket.ticket)).size, 1)
  t.match(tickets.getDebugInfo(), { hasTicket: true, inFlight: false, requests: 1 })
  // Held while unused: no second request.
  await tickets.getValidTicket()
  t.equal(counter.count(), 1)
})

await t.test('a used ticket is never handed out again: every connect gets a fresh one', async (t) => {
  const counter = countingFetch()
  const tickets = manager(gateway, { fetch: counter.fetch })
  const first = await tickets.getValidTicket()
  const client = new TestClient(`${gateway.wsUrl}?ticket=${first.ticket}`)
  t.equal((await client.frame(0)).type, 'session_established')
  tickets.markUsed(first)
  const second = await tickets.getValidTicket()
  t.not(second.ticket, first.ticket)
  t.equal(counter.count(), 2)
  client.close()
})

await t.test('503 WS_TICKET_REDIS_NOT_READY: retried after 200, 500, 1000 ms, then TicketError', async (t) => {
  const down = await startGateway(t, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, { waitForEngine: false })
  const counter = countingFetch()
  const waits: number[] = []
  const tickets = manager(down, { fetch: counter.fetch, sleep: async (ms) => { waits.push(ms) } })
  const error = await tickets.getValidTicket().catch((err: unknown) => err)
  t.ok(error instanceof TicketError)
  t.match(error, { code: 'WS_TICKET_REDIS_NOT_READY', status: 503, action: 'retry' })
  t.same(waits, [200, 500, 1000], 'the SPEC §6 timeline')
  t.equal(counter.count(), 4, 'the first attempt and three retries')
})

await t.test('401: the token provider is asked once for a fresh JWT, then AuthenticationError', async (t) => {
  const calls: boolean[] = []
  const counter = countingFetch()
  const tickets = manager(gateway, {
    fetch: counter.fetch,
    getToken: async ({ forceRefresh }) => { calls.push(forceRefresh); return await userToken('alice', 's1', { secret: 'a-wrong-secret-of-thirty-two-characters!' }) }
  })
  const error = await tickets.getValidTicket().catch((err: unknown) => err)
  t.ok(error instanceof AuthenticationError)
  t.match(error, { code: 'INVALID_TOKEN', status: 401 })
  t.same(calls, [false, true], 'one fresh JWT')
  t.equal(counter.count(), 2)
})

await t.test('401 then a good fresh JWT: the ticket is issued', async (t) => {
  const tickets = manager(gateway, {
    getToken: async ({ forceRefresh }) => forceRefresh ? await userToken() : await userToken('alice', 's1', { expiresIn: '-1m' })
  })
  const ticket = await tickets.getValidTicket()
  t.match(ticket.ticket, /^[A-Za-z0-9_-]{43}$/)
})

await t.test('MISSING_SESSION is a hard failure: no fresh token asked', async (t) => {
  const calls: boolean[] = []
  const tickets = manager(gateway, { getToken: async ({ forceRefresh }) => { calls.push(forceRefresh); return await tokenWithoutSession() } })
  const error = await tickets.getValidTicket().catch((err: unknown) => err)
  t.ok(error instanceof AuthenticationError)
  t.match(error, { code: 'MISSING_SESSION', action: 'stop' })
  t.same(calls, [false])
})

await t.test('a banned user (401 SESSION_REVOKED) is a hard failure: no fresh token asked', async (t) => {
  const banned = await disconnect(gateway, { userId: 'banned-user', revokeSeconds: 60 })
  t.equal(banned.status, 200)
  const calls: boolean[] = []
  const tickets = manager(gateway, { getToken: async ({ forceRefresh }) => { calls.push(forceRefresh); return await userToken('banned-user', 'b1') } })
  const error = await tickets.getValidTicket().catch((err: unknown) => err)
  t.ok(error instanceof AuthenticationError)
  t.match(error, { code: 'SESSION_REVOKED', status: 401, action: 'stop' })
  t.same(calls, [false], 'a fresh JWT would not lift a ban')
})

await t.test('429: Retry-After is honoured, then the request goes through', async (t) => {
  const limited = await startGateway(t, { REDIS_URL: redis.url, TICKET_RATE_LIMIT_PER_USER: '1', TICKET_RATE_LIMIT_WINDOW_MS: '2000', REDIS_KEY_PREFIX: 'limited:' })
  const waits: number[] = []
  const tickets = manager(limited, { sleep: async (ms) => { waits.push(ms); await new Promise((resolve) => setTimeout(resolve, ms)) } })
  await tickets.refreshTicket()
  const second = await tickets.refreshTicket()
  t.match(second.ticket, /^[A-Za-z0-9_-]{43}$/)
  t.equal(waits.length, 1)
  // The window's remaining 1–2 s plus the server's jitter of up to 2 s (jitteredRetryAfter).
  t.ok(waits[0]! >= 1000 && waits[0]! <= 4000, `waited the jittered Retry-After (${waits[0]} ms, 1–4 s)`)
})

await t.test('an unreachable gateway is a ConnectionError', async (t) => {
  const tickets = new TicketManager({ baseUrl: `http://127.0.0.1:${await freePort()}`, getToken: async () => 'x' })
  const error = await tickets.getValidTicket().catch((err: unknown) => err)
  t.ok(error instanceof ConnectionError)
  t.match(error, { code: 'NETWORK_ERROR' })
})
