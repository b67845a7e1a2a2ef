import t from 'tap'
import { MemoryEngine } from '../../../src/server/engine/memory-engine.js'
import { GatewayMetrics } from '../../../src/server/metrics/gateway-metrics.js'
import { TicketService } from '../../../src/server/tickets/ticket-service.js'
import { Revocations } from '../../../src/server/tickets/revocations.js'

await t.test('tickets drawn from the random pool are distinct across refills, and each consumes once', async (t) => {
  const engine = new MemoryEngine()
  t.teardown(async () => { await engine.close() })
  const metrics = new GatewayMetrics()
  const tickets = new TicketService({ engine, ttlSeconds: 30, metrics, revocations: new Revocations({ engine }) })
  // 1000 tickets span several 4 KiB refills (128 tickets each).
  const issued = await Promise.all(Array.from({ length: 1000 }, async (_, index) => await tickets.issue({ sub: `u${index}`, sessionId: 's' })))
  t.equal(new Set(issued.map((response) => response.ticket)).size, 1000)
  t.ok(issued.every((response) => /^[A-Za-z0-9_-]{43}$/.test(response.ticket)))
  const first = await Promise.all(issued.map(async (response) => await tickets.consume(response.ticket)))
  t.equal(first.filter((result) => result.ok).length, 1000)
  const again = await tickets.consume(issued[500]!.ticket)
  t.same(again, { ok: false, code: 'WS_TICKET_INVALID', reason: 'invalid' })
  t.equal((await metrics.ticketsIssued.get()).values[0]?.value, 1000)
})

await t.test('a refused admission fails the issue and counts nothing', async (t) => {
  const engine = new MemoryEngine()
  t.teardown(async () => { await engine.close() })
  const metrics = new GatewayMetrics()
  const tickets = new TicketService({ engine, ttlSeconds: 30, metrics, revocations: new Revocations({ engine }) })
  await t.rejects(tickets.issue({ sub: 'u', sessionId: 's' }, Promise.reject(new Error('limited'))), { message: 'limited' })
  t.equal((await metrics.ticketsIssued.get()).values[0]?.value, 0)
})
