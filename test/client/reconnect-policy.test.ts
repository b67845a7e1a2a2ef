import t from 'tap'
import { ReconnectPolicy, closeActionOf, type AttemptOutcome } from '../../packages/client/src/reconnect-policy.js'
import { AuthenticationError, ConnectionError, TicketError } from '../../packages/client/src/errors.js'
import { codes, type CodeDefinition } from '../../src/protocol/codes.js'

function closed (code: number, reason = '', established = false): AttemptOutcome & { kind: 'closed' } {
  return { kind: 'closed', code, reason, established }
}

await t.test('every close code of the code table resolves to its row action; unknown codes retry', async (t) => {
  for (const [name, row] of Object.entries(codes) as Array<[string, CodeDefinition]>) {
    if (row.close === undefined) continue
    t.equal(closeActionOf(row.close, name), row.action, `${row.close} ${name}`)
    t.equal(closeActionOf(row.close), row.action, `${row.close} without a reason`)
  }
  for (const code of [1000, 1001, 1006, 1011, 4000]) t.equal(closeActionOf(code), 'retry', String(code))
})

await t.test('4403 (stop): AuthenticationError, the client stops', async (t) => {
  const decision = new ReconnectPolicy().decide(closed(4403, 'SESSION_REVOKED', true), false)
  t.equal(decision.kind, 'stop')
  t.ok(decision.kind === 'stop' && decision.error instanceof AuthenticationError)
  t.match(decision, { error: { code: 'SESSION_REVOKED', status: 4403, action: 'stop' }, failure: undefined })
})

await t.test('4401 (reauth): one fresh ticket at once, then AuthenticationError; an established session starts over', async (t) => {
  const policy = new ReconnectPolicy()
  t.same(policy.decide(closed(4401, 'WS_TICKET_INVALID'), false), { kind: 'fresh-ticket' })
  const second = policy.decide(closed(4401, 'WS_TICKET_INVALID'), false)
  t.ok(second.kind === 'stop' && second.error instanceof AuthenticationError)
  t.match(second, { kind: 'stop', error: { code: 'WS_TICKET_INVALID', status: 4401, message: /^the gateway refused a fresh ticket too; / } })
  t.equal(policy.attempts, 0, 'a refused ticket is no failed attempt')

  const again = new ReconnectPolicy()
  t.same(again.decide(closed(4401, 'WS_TICKET_MISSING'), false), { kind: 'fresh-ticket' })
  again.decide(closed(1006, '', true), false)
  t.same(again.decide(closed(4401, 'WS_TICKET_INVALID'), false), { kind: 'fresh-ticket' }, 'after a session, one fresh ticket again')
})

await t.test('4429 (backoff): reconnect, never sooner than the initial delay', async (t) => {
  const policy = new ReconnectPolicy({ backoff: { initialMs: 300, random: () => 0 } })
  const decision = policy.decide(closed(4429, 'RATE_LIMITED', true), false)
  t.match(decision, { kind: 'reconnect', floorMs: 300, failure: { code: 'RATE_LIMITED', status: 4429 } })
  t.ok(decision.kind === 'reconnect' && decision.failure instanceof ConnectionError)
  if (decision.kind === 'reconnect') t.equal(policy.delayOf(decision), 300)
  t.match(new ReconnectPolicy().decide(closed(4429), false), { floorMs: 1000 }, 'the default initial delay')
})

await t.test('retry, fix and unknown closes reconnect with plain backoff', async (t) => {
  for (const [code, reason] of [[1012, 'SERVER_RESTART'], [1013, 'SLOW_CONSUMER'], [1006, 'HEARTBEAT_TIMEOUT'], [1009, 'MESSAGE_TOO_LARGE'], [1003, 'BINARY_NOT_SUPPORTED'], [1000, '']] as const) {
    const policy = new ReconnectPolicy({ backoff: { initialMs: 100, random: () => 0 } })
    const decision = policy.decide(closed(code, reason), false)
    t.match(decision, { kind: 'reconnect', floorMs: 0, failure: { code: reason === '' ? `CLOSE_${code}` : reason, status: code } }, `${code}`)
    if (decision.kind === 'reconnect') t.equal(policy.delayOf(decision), 0)
    t.equal(policy.attempts, 1)
  }
})

await t.test("an error frame before the close names the failure", async (t) => {
  const decision = new ReconnectPolicy().decide({ ...closed(1008, 'x'), errorFrame: { type: 'error', code: 'BAD_MESSAGE' } }, false)
  t.match(decision, { kind: 'reconnect', failure: { code: 'BAD_MESSAGE', message: 'the connection closed with 1008 (x)' } })
})

await t.test('ticket failures: authentication stops, a ticket store without Redis polls, the rest reconnects', async (t) => {
  const auth = new AuthenticationError('INVALID_TOKEN', 'refused', { status: 401 })
  t.same(new ReconnectPolicy().decide({ kind: 'failed', error: auth }, false), { kind: 'stop', error: auth })
  const notReady = new TicketError('WS_TICKET_REDIS_NOT_READY', 'down', { status: 503 })
  t.same(new ReconnectPolicy().decide({ kind: 'failed', error: notReady }, false), { kind: 'poll', failure: notReady })
  // The TicketManager already waited out Retry-After: no 4429-style floor on top.
  const limited = new TicketError('RATE_LIMITED', 'slow down', { status: 429 })
  t.same(new ReconnectPolicy().decide({ kind: 'failed', error: limited }, false), { kind: 'reconnect', failure: limited, floorMs: 0 })
  const network = new ConnectionError('NETWORK_ERROR', 'unreachable')
  t.same(new ReconnectPolicy().decide({ kind: 'failed', error: network }, true), { kind: 'poll', failure: network }, 'while polling, every failure keeps polling')
})

await t.test('polling probes with their own backoff, reset once a session is established', async (t) => {
  const policy = new ReconnectPolicy({ probeBackoff: { initialMs: 1000, maxMs: 4000, random: () => 0.999 } })
  const failure = new ConnectionError('NETWORK_ERROR', 'x')
  const delays = [0, 1, 2].map(() => policy.delayOf({ kind: 'poll', failure }))
  t.same(delays, [999, 1998, 3996])
  policy.established(true)
  t.equal(policy.delayOf({ kind: 'poll', failure }), 999)
})

await t.test('max attempts: the attempt fails, then RECONNECT_FAILED stops the client', async (t) => {
  const policy = new ReconnectPolicy({ maxAttempts: 2, backoff: { random: () => 0 } })
  for (let n = 0; n < 2; n += 1) {
    const decision = policy.decide({ kind: 'failed', error: new ConnectionError('NETWORK_ERROR', 'x') }, false)
    t.equal(decision.kind, 'reconnect')
    if (decision.kind === 'reconnect') policy.delayOf(decision)
  }
  const last = policy.decide({ kind: 'failed', error: new ConnectionError('NETWORK_ERROR', 'x') }, false)
  t.match(last, { kind: 'stop', error: { code: 'RECONNECT_FAILED', message: 'gave up after 2 failed attempts' }, failure: { code: 'NETWORK_ERROR' } })
  policy.established(false)
  t.equal(policy.attempts, 0)
})
