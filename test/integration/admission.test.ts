import t from 'tap'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { userToken } from '../helpers/tokens.js'
import { busyFor, saturate } from '../helpers/stall.js'
import { TicketManager } from '../../packages/client/src/ticket-manager.js'
import { DEFAULT_RELAY_SETTINGS } from '../../src/server/engine/memory-engine.js'
import { RedisEngine } from '../../src/server/engine/redis-engine.js'
import { EngineOverloadedError, EngineUnavailableError, type EngineLogger } from '../../src/server/engine/engine.js'

/**
 * Admission control (SPEC §13): with the event loop saturated, new tickets and
 * upgrades get 503 OVERLOADED while open sessions and probes go on, and a stall of
 * our own is never reported as Redis being down.
 */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const silent: EngineLogger = { info () {}, warn () {}, error () {} }


void t.test('a saturated loop refuses new tickets and upgrades 503 OVERLOADED; sessions, /livez and /readyz go on', async (t) => {
  const gateway = await startGateway(t, {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: 'admission:',
    // Far above what a busy test machine shows, far below the stalls made here.
    ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '100',
    ADMISSION_SAMPLE_INTERVAL_MS: '200'
  })
  // Booting (module compilation, connecting) shows as load in the first samples.
  await eventually(() => !gateway.app.isUnderPressure(), 5000)
  const token = await userToken('olga', 'o1')
  // Several: an upgrade that lands in a sample between two stalls is admitted and spends its ticket.
  const spareTickets = [await requestTicket(gateway, token), await requestTicket(gateway, token), await requestTicket(gateway, token), await requestTicket(gateway, token)]
  const open = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.equal((await open.frame(0)).type, 'session_established')

  const stop = saturate()
  t.teardown(stop)
  await eventually(() => gateway.app.isUnderPressure(), 5000)

  const refusals: string[] = []
  for (let i = 0; i < 10; i += 1) {
    const answer = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
    const body = await answer.json() as Record<string, unknown>
    if (answer.status === 200) continue // a sample between two stalls
    t.equal(answer.status, 503)
    t.same(body, { error: 'SERVICE_UNAVAILABLE', code: 'OVERLOADED', message: 'Gateway instance is overloaded; retry after Retry-After', traceId: answer.headers.get('x-request-id') })
    refusals.push(answer.headers.get('retry-after') ?? '')
  }
  t.ok(refusals.length >= 5, `most ticket requests refused while saturated (${refusals.length} of 10)`)
  for (const value of refusals) t.ok(Number(value) >= 2, `Retry-After ${value} ≥ 2 s`)

  let refusedTicket: string | undefined
  let upgrade: TestClient | undefined
  for (const ticket of spareTickets) {
    upgrade = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
    if (!await upgrade.opened) {
      refusedTicket = ticket
      break
    }
    upgrade.close() // a sample between two stalls
  }
  t.equal(await upgrade?.opened, false, 'the upgrade is refused')
  t.equal(upgrade?.unexpectedStatus, 503)

  for (const path of ['/livez', '/readyz']) {
    const probe = await fetch(`${gateway.baseUrl}${path}`)
    t.equal(probe.status, 200, `${path} stays 200: an overloaded instance is alive and its Redis ready`)
    await probe.arrayBuffer()
  }
  open.send({ type: 'ping', id: 'p1' })
  t.same(await open.frame(1), { type: 'pong', id: 'p1' }, 'the open session is served')

  stop()
  await eventually(() => !gateway.app.isUnderPressure(), 5000)
  const after = new TestClient(`${gateway.wsUrl}?ticket=${refusedTicket ?? ''}`)
  t.equal((await after.frame(0)).type, 'session_established', 'the refused upgrade did not spend its ticket; admitted again once the loop is free')
  after.close()
  open.close()
  const metrics = await (await fetch(`${gateway.baseUrl}/metrics`)).text()
  t.match(metrics, /rtgw_admission_refusals_total\{route="upgrade"\} 1\b/)
  t.match(metrics, new RegExp(`rtgw_admission_refusals_total\\{route="ticket"\\} ${refusals.length}\\b`))
})

void t.test('a command timing out because our loop stalled is OVERLOADED, not Redis down; a slow Redis is still Redis', async (t) => {
  const engine = new RedisEngine({ url: redis.url, keyPrefix: 'stall:', commandTimeoutMs: 100, logger: silent, relay: DEFAULT_RELAY_SETTINGS })
  t.teardown(async () => { await engine.close() })
  await eventually(() => engine.isReady())

  // The reply arrives while the loop is blocked; the timeout timer runs before the socket is read.
  const stalled = engine.publish('c', '1')
  setImmediate(() => { busyFor(400) })
  const error = await stalled.then(() => undefined, (err: unknown) => err)
  t.ok(error instanceof EngineOverloadedError, `our own stall: EngineOverloadedError (${String(error)})`)
  t.notOk(error instanceof EngineUnavailableError, 'not reported as the engine being unavailable')
  t.equal(engine.isReady(), true, 'readiness untouched')

  // Redis itself not answering (CLIENT PAUSE from another connection) is a real unavailability.
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  await admin.call('CLIENT', 'PAUSE', '400', 'ALL')
  const slow = await engine.publish('c', '2').then(() => undefined, (err: unknown) => err)
  t.ok(slow instanceof EngineUnavailableError, `a paused Redis: EngineUnavailableError (${String(slow)})`)
  t.notOk(slow instanceof EngineOverloadedError)
})

void t.test('the SDK waits the Retry-After of 503 OVERLOADED and retries the ticket, never switching to polling', async (t) => {
  const gateway = await startGateway(t, {
    REDIS_URL: redis.url,
    REDIS_KEY_PREFIX: 'admission-sdk:',
    ADMISSION_MAX_EVENT_LOOP_DELAY_MS: '100',
    ADMISSION_SAMPLE_INTERVAL_MS: '200'
  })
  await eventually(() => !gateway.app.isUnderPressure(), 5000)
  let stop = saturate()
  t.teardown(() => { stop() })
  await eventually(() => gateway.app.isUnderPressure(), 5000)

  const waits: number[] = []
  const statuses: number[] = []
  const tickets = new TicketManager({
    baseUrl: gateway.baseUrl,
    getToken: async () => await userToken('sana', 's1'),
    fetch: async (input, init) => {
      const response = await fetch(input, init)
      statuses.push(response.status)
      return response
    },
    sleep: async () => {
      waits.push(waits.length)
      stop()
      stop = () => {}
      await eventually(() => !gateway.app.isUnderPressure(), 5000)
    }
  })
  const ticket = await tickets.getValidTicket()
  t.match(ticket.ticket, /^[A-Za-z0-9_-]{43}$/, 'a ticket once the instance is free again')
  t.same(statuses, [503, 200], 'one refusal, then the retry succeeds')
  t.equal(waits.length, 1, 'it waited once, for the Retry-After')
})
