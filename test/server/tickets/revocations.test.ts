import t from 'tap'
import { MemoryEngine } from '../../../src/server/engine/memory-engine.js'
import { EngineUnavailableError } from '../../../src/server/engine/engine.js'
import { GatewayMetrics } from '../../../src/server/metrics/gateway-metrics.js'
import { Revocations } from '../../../src/server/tickets/revocations.js'
import { TicketService } from '../../../src/server/tickets/ticket-service.js'
import { GatewayError } from '../../../src/server/errors.js'
import { rejectionOf } from '../../helpers/async.js'

/** The per-instance mirror of bans (SPEC §3 revokeSeconds) on a real memory engine, with a clock the test moves. */

await t.test('the mirror loads what the engine holds, then needs no load for a check', async (t) => {
  const engine = new MemoryEngine()
  t.teardown(async () => { await engine.close() })
  await engine.storeRevocation({ kind: 'user', id: 'mallory' }, 60)
  const revocations = new Revocations({ engine })
  const learned: unknown[] = []
  revocations.onLearned((target) => { learned.push(target) })
  await revocations.pending()
  t.equal(revocations.pending(), undefined, 'loaded: the hot path has nothing to wait for')
  t.equal(revocations.isRevoked('mallory', 'any-session'), true)
  t.equal(revocations.isRevoked('alice', 'any-session'), false)
  t.strictSame(learned, [{ kind: 'user', id: 'mallory' }], 'a loaded ban it had not heard of is reported (the hub closes its sockets)')
})

await t.test('a remembered ban ends at its deadline on this instance\'s clock; a shorter one never cuts it', async (t) => {
  const engine = new MemoryEngine()
  t.teardown(async () => { await engine.close() })
  let now = 1_000_000
  const revocations = new Revocations({ engine, now: () => now })
  revocations.remember({ kind: 'session', id: 's1' }, 10_000)
  revocations.remember({ kind: 'session', id: 's1' }, 1_000)
  t.equal(revocations.isRevoked('u', 's1'), true)
  now += 9_999
  t.equal(revocations.isRevoked('u', 's1'), true, 'still in force 1 ms before the end')
  t.equal(revocations.isRevoked('u', 's2'), false, 'another session is not banned')
  now += 1
  t.equal(revocations.isRevoked('u', 's1'), false, 'ended')
})

await t.test('issue throws SESSION_REVOKED while banned; consume of an older ticket says revoked', async (t) => {
  const engine = new MemoryEngine()
  t.teardown(async () => { await engine.close() })
  const metrics = new GatewayMetrics()
  const revocations = new Revocations({ engine })
  const tickets = new TicketService({ engine, ttlSeconds: 30, metrics, revocations })
  const older = await tickets.issue({ sub: 'mallory', sessionId: 'm1' })
  revocations.remember({ kind: 'user', id: 'mallory' }, 60_000)

  const refused = await rejectionOf(tickets.issue({ sub: 'mallory', sessionId: 'm2' }, Promise.reject(new Error('limited'))))
  t.ok(refused instanceof GatewayError && refused.code === 'SESSION_REVOKED', `SESSION_REVOKED (got ${String(refused)})`)
  t.same(await tickets.consume(older.ticket), { ok: false, code: 'SESSION_REVOKED', reason: 'revoked' })
  t.same(await tickets.consume(older.ticket), { ok: false, code: 'WS_TICKET_INVALID', reason: 'invalid' }, 'the refused ticket was consumed all the same')
  t.equal((await metrics.ticketsIssued.get()).values[0]?.value, 1, 'no ticket issued to the banned user')
})

await t.test('bans that cannot be loaded fail issue and consume as unavailable, never silently', async (t) => {
  const engine = new MemoryEngine()
  const revocations = new Revocations({ engine })
  await revocations.pending()
  // The engine goes away: the mirror is no longer trusted, and cannot be reloaded.
  await engine.close()
  t.not(revocations.pending(), undefined, 'not current any more')
  t.ok(await rejectionOf(revocations.pending() ?? Promise.resolve()) instanceof EngineUnavailableError, 'the load rejects with EngineUnavailableError')
  const tickets = new TicketService({ engine, ttlSeconds: 30, metrics: new GatewayMetrics(), revocations })
  t.ok(await rejectionOf(tickets.issue({ sub: 'u', sessionId: 's' })) instanceof EngineUnavailableError)
  t.same(await tickets.consume('A'.repeat(43)), { ok: false, code: 'WS_TICKET_REDIS_NOT_READY', reason: 'engine_unavailable' })
})
