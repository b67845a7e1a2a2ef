import t from 'tap'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually } from '../helpers/gateway.js'
import { busyFor } from '../helpers/stall.js'
import { DEFAULT_RELAY_SETTINGS } from '../../src/server/engine/memory-engine.js'
import { RedisEngine } from '../../src/server/engine/redis-engine.js'
import { EngineOverloadedError, EngineUnavailableError, type EngineLogger } from '../../src/server/engine/engine.js'

/**
 * Issue 12 (the presence bench's 337 REDIS_NOT_READY): under a burst our loop runs
 * long turns back to back; a command's timeout then fires in the next turn's timers
 * phase, only a little late, before the poll phase reads the reply that was waiting.
 * A timer lateness rule (> 1.5 × timeout) misses that: the runner sums the loop's lag
 * while the command waited, and a timeout with that much lag is ours (OVERLOADED).
 */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const silent: EngineLogger = { info () {}, warn () {}, error () {} }
const COMMAND_TIMEOUT_MS = 200

const outcome = async (pending: Promise<unknown>): Promise<unknown> => await pending.then(() => 'ok', (err: unknown) => err)

void t.test('a timeout fired only 1.2 × late after our own stall is OVERLOADED; Redis paused is still unavailable', async (t) => {
  const engine = new RedisEngine({ url: redis.url, keyPrefix: 'stall12:', commandTimeoutMs: COMMAND_TIMEOUT_MS, logger: silent, relay: DEFAULT_RELAY_SETTINGS })
  t.teardown(async () => { await engine.close() })
  await eventually(() => engine.isReady())
  t.equal(await outcome(engine.readHistory('room')), 'ok', 'a quiet loop: the command answers')

  const published = engine.publish('room', '1')
  // 240 ms: later than the 200 ms timeout, well under 1.5 × (300 ms), so the timer is "on time enough".
  setImmediate(() => { busyFor(COMMAND_TIMEOUT_MS * 1.2) })
  const error = await outcome(published)
  t.ok(error instanceof EngineOverloadedError, `a publish after our 240 ms stall: EngineOverloadedError (${String(error)})`)
  t.notOk(error instanceof EngineUnavailableError, 'not "Redis not ready"')
  t.equal(engine.isReady(), true, 'readiness untouched')

  // A read is safe to send again: the same stall costs it nothing (one resume read answers a batch of subscribes).
  const before = await engine.readHistory('room')
  const read = engine.readHistory('room')
  setImmediate(() => { busyFor(COMMAND_TIMEOUT_MS * 1.2) })
  const answer = await read
  t.equal(answer.seq, before.seq, 'read-history after our 240 ms stall: answered, sent once more')

  // Redis itself not answering while our loop is idle: a real unavailability, as before.
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  await admin.call('CLIENT', 'PAUSE', String(COMMAND_TIMEOUT_MS * 2), 'ALL')
  const paused = await outcome(engine.publish('room', '2'))
  t.ok(paused instanceof EngineUnavailableError, `a paused Redis: EngineUnavailableError (${String(paused)})`)
  t.notOk(paused instanceof EngineOverloadedError)
  await eventually(async () => await outcome(engine.readHistory('room')) === 'ok')
})
