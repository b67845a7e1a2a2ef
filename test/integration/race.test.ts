import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient, type ClosedEvent } from '../helpers/ws-client.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const instances = [
  await startGateway(t, { REDIS_URL: redis.url }),
  await startGateway(t, { REDIS_URL: redis.url })
]

async function counterTotal (gateways: Gateway[], read: (gateway: Gateway) => Promise<number>): Promise<number> {
  let total = 0
  for (const gateway of gateways) total += await read(gateway)
  return total
}

interface Outcome { first: Record<string, unknown> | undefined, closed: ClosedEvent }

await t.test('100 concurrent upgrades with one ticket across two instances: exactly one session', async (t) => {
  const ticket = await requestTicket(instances[0]!)
  const clients = Array.from({ length: 100 }, (_, index) => {
    const client = new TestClient(`${instances[index % 2]!.wsUrl}?ticket=${ticket}`)
    t.teardown(() => { client.socket.terminate() })
    return client
  })

  const outcomes: Outcome[] = await Promise.all(clients.map(async (client) => {
    const first = await client.frame(0, 10_000).catch(() => undefined)
    // The winner is closed by the test; every loser must be closed by the server.
    if (first?.type === 'session_established') client.close()
    return { first, closed: await client.closed }
  }))

  const winners = outcomes.filter((outcome) => outcome.first?.type === 'session_established')
  const losers = outcomes.filter((outcome) => outcome.first?.type !== 'session_established')
  t.equal(winners.length, 1, 'exactly one session_established')
  t.match(winners[0]?.first, { type: 'session_established', userId: 'alice', sessionId: 's1' })
  t.strictSame(winners[0]?.closed, { code: 1005, reason: '' })
  t.equal(losers.length, 99)
  t.equal(losers.filter((outcome) => JSON.stringify(outcome.first) === JSON.stringify({ type: 'error', code: 'WS_TICKET_INVALID' })).length, 99,
    'every loser got exactly {type:error, code:WS_TICKET_INVALID}')
  t.equal(losers.filter((outcome) => outcome.closed.code === 4401 && outcome.closed.reason === 'WS_TICKET_INVALID').length, 99,
    'every loser was closed with 4401 WS_TICKET_INVALID')
  t.equal(clients.filter((client) => client.frames.length !== 1).length, 0, 'no client got a second frame')

  const consumed = await counterTotal(instances, async (gateway) => (await gateway.app.metrics.ticketsConsumed.get()).values[0]?.value ?? 0)
  t.equal(consumed, 1, 'ticketsConsumed across both instances')
  const rejected = async (reason: string): Promise<number> => await counterTotal(instances, async (gateway) =>
    (await gateway.app.metrics.ticketsRejected.get()).values.find((value) => value.labels.reason === reason)?.value ?? 0)
  t.equal(await rejected('invalid'), 99, 'ticketsRejected{reason=invalid} across both instances')
  t.equal(await rejected('missing'), 0)
  t.equal(await rejected('expired'), 0)
  t.equal(await rejected('engine_unavailable'), 0)
  // Both instances took part (the race really was cross-instance).
  for (const [index, gateway] of instances.entries()) {
    const seen = (await gateway.app.metrics.ticketsRejected.get()).values.find((value) => value.labels.reason === 'invalid')?.value ?? 0
    const won = (await gateway.app.metrics.ticketsConsumed.get()).values[0]?.value ?? 0
    t.equal(seen + won, 50, `instance ${index} handled its 50 upgrades`)
  }
})
