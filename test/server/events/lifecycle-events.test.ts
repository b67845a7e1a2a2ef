import t from 'tap'
import { EngineUnavailableError, type EventFields } from '../../../src/server/engine/engine.js'
import { LifecycleEvents, type LifecycleEventName, type LifecycleOutcome } from '../../../src/server/events/lifecycle-events.js'

/**
 * The writer's guarantees (SPEC §12): the client path never waits for the engine, at
 * most `maxInFlight` writes are pending (the rest are dropped and counted), failures
 * are counted and logged once per streak, and join/leave are ready for presence.
 */
const who = { userId: 'alice', sessionId: 's1', connectionId: 'c1' }

function harness (options: { maxInFlight?: number } = {}): {
  events: LifecycleEvents
  counts: Map<string, number>
  lines: Array<Record<string, unknown>>
  written: EventFields[]
  /** Settles the oldest pending write: appended, or rejected with `err`. */
  settle: (err?: Error) => void
} {
  const counts = new Map<string, number>()
  const lines: Array<Record<string, unknown>> = []
  const written: EventFields[] = []
  const waiting: Array<{ fields: EventFields, resolve: () => void, reject: (err: Error) => void }> = []
  const events = new LifecycleEvents({
    engine: { appendEvent: async (fields) => { await new Promise<void>((resolve, reject) => { waiting.push({ fields, resolve, reject }) }) } },
    enabled: new Set<LifecycleEventName>(['connect', 'disconnect', 'join', 'leave']),
    instanceId: 'i1',
    now: () => 1700000000000,
    logger: { info: (obj) => { lines.push({ level: 'info', ...obj }) }, warn: (obj) => { lines.push({ level: 'warn', ...obj }) }, error: () => {} },
    metrics: { lifecycleEvent: (event: LifecycleEventName, outcome: LifecycleOutcome) => { counts.set(`${event}:${outcome}`, (counts.get(`${event}:${outcome}`) ?? 0) + 1) } },
    ...options
  })
  const settle = (err?: Error): void => {
    const next = waiting.shift()
    if (next === undefined) throw new Error('nothing pending')
    if (err === undefined) {
      written.push(next.fields)
      next.resolve()
    } else next.reject(err)
  }
  return { events, counts, lines, written, settle }
}

await t.test('writing returns at once; the fields are exact; disabled events cost nothing', async (t) => {
  const { events, written, settle, counts } = harness()
  events.connect(who)
  events.subscribe(who, 'room')
  events.disconnect(who, 1012, 'SERVER_RESTART')
  t.equal(events.inFlight, 2, 'the engine has not answered, the caller went on; subscribe is not enabled')
  settle()
  settle()
  await events.settled()
  t.strictSame(written, [
    { event: 'connect', userId: 'alice', sessionId: 's1', connectionId: 'c1', instanceId: 'i1', ts: '1700000000000' },
    { event: 'disconnect', userId: 'alice', sessionId: 's1', connectionId: 'c1', instanceId: 'i1', ts: '1700000000000', code: '1012', reason: 'SERVER_RESTART' }
  ])
  t.strictSame(Object.fromEntries(counts), { 'connect:written': 1, 'disconnect:written': 1 })
})

await t.test('past maxInFlight pending writes an event is dropped and counted, never queued', async (t) => {
  const { events, counts, settle } = harness({ maxInFlight: 2 })
  events.connect(who)
  events.connect(who)
  events.connect(who)
  events.disconnect(who, 1000, '')
  t.equal(events.inFlight, 2)
  t.strictSame(Object.fromEntries(counts), { 'connect:dropped': 1, 'disconnect:dropped': 1 })
  settle()
  await new Promise((resolve) => setImmediate(resolve))
  events.leave(who, 'room')
  t.equal(events.inFlight, 2, 'room again once one ended')
  settle()
  settle()
  await events.settled()
  t.strictSame(Object.fromEntries(counts), { 'connect:dropped': 1, 'disconnect:dropped': 1, 'connect:written': 2, 'leave:written': 1 })
})

await t.test('a failed write is counted; one warning per failing streak, one line when it recovers', async (t) => {
  const { events, counts, lines, settle } = harness()
  for (let n = 0; n < 3; n += 1) events.connect(who)
  for (let n = 0; n < 3; n += 1) settle(new EngineUnavailableError('redis is not ready'))
  await events.settled()
  events.join(who, 'room')
  settle()
  await events.settled()
  t.strictSame(Object.fromEntries(counts), { 'connect:failed': 3, 'join:written': 1 })
  t.strictSame(lines.map((line) => [line.level, line.event]), [['warn', 'lifecycle.append_failed'], ['info', 'lifecycle.append_recovered']])
})

await t.test('join and leave (the presence hook) write their channel', async (t) => {
  const { events, written, settle } = harness()
  events.join(who, 'room')
  events.leave(who, 'room')
  settle()
  settle()
  await events.settled()
  t.strictSame(written.map((fields) => [fields.event, fields.channel]), [['join', 'room'], ['leave', 'room']])
})
