import t from 'tap'
import { RedisEngine } from '../../src/server/engine/redis-engine.js'
import { RedisUnreachableLog, redisTarget } from '../../src/server/engine/redis-unreachable-log.js'
import { DEFAULT_RELAY_SETTINGS } from '../../src/server/engine/memory-engine.js'
import type { EngineLogger } from '../../src/server/engine/engine.js'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, startGateway } from '../helpers/gateway.js'

/** Operators see why Redis cannot be reached (docs/operations.md "Logs"), and never its credentials. */

type LogRecord = Record<string, unknown>
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** An ACL user matching the URL's userinfo, so the same URL works once the server is up. */
const ACL_USER = ['--user', 'user', 'on', '>s3cret', '~*', '&*', '+@all']

void t.test('unreachable at boot: one error line with host:port and ECONNREFUSED, no credentials; ready once Redis is up; a later outage is reported again', async (t) => {
  const port = await freePort()
  const lines: string[] = []
  const logStream = { write (line: string): void { lines.push(line) } }
  const records = (): LogRecord[] => lines.map((line) => JSON.parse(line) as LogRecord)
  const events = (event: string): LogRecord[] => records().filter((record) => record.event === event)

  const gateway = await startGateway(t, { REDIS_URL: `redis://user:s3cret@127.0.0.1:${port}`, LOG_LEVEL: 'info' }, { logStream, waitForEngine: false })
  await eventually(() => events('engine.redis.unreachable').length > 0, 5000)
  // ioredis retries after about 0.2, 0.4, 0.8 and 1.6 s: several more failures, still one line.
  await sleep(3000)
  const unreachable = events('engine.redis.unreachable')
  t.equal(unreachable.length, 1, 'exactly one line for the failures so far')
  t.match(unreachable[0], {
    level: 50,
    component: 'engine',
    event: 'engine.redis.unreachable',
    topology: 'standalone',
    target: `127.0.0.1:${port}`,
    code: 'ECONNREFUSED',
    attempts: 1,
    failuresSinceLastLog: 1
  })
  t.equal(gateway.app.engine.isReady(), false)

  const redis = await RedisServer.start(port, { args: ACL_USER })
  t.teardown(async () => { await redis.stop() })
  await eventually(() => gateway.app.engine.isReady(), 10_000)
  const ready = events('engine.redis.ready')
  t.equal(ready.length, 1, 'one ready line on recovery')
  t.match(ready[0], { level: 30, component: 'engine', topology: 'standalone' })
  t.equal((await fetch(`${gateway.baseUrl}/readyz`)).status, 200, 'authenticated with the URL\'s user')
  t.equal(events('engine.redis.unreachable').length, 1, 'no unreachable line once connected')

  // A new outage starts its own count: its first failure is logged at once, not 30 s later.
  await redis.kill()
  await eventually(() => events('engine.redis.unreachable').length === 2, 5000)
  t.match(events('engine.redis.unreachable')[1], { target: `127.0.0.1:${port}`, code: 'ECONNREFUSED', attempts: 1 })
  const down = events('engine.redis.down')
  t.equal(down.length, 1, 'the drop itself is the existing warning')
  t.match(down[0], { level: 40 })

  t.ok(lines.length > 0)
  t.notOk(lines.some((line) => line.includes('s3cret')), 'no log line contains the password')
  t.notOk(lines.some((line) => line.includes('@127.0.0.1')), 'nor the URL\'s userinfo')
})

void t.test('while Redis stays unreachable, lines come at most once per interval and count the failures since the last one', async (t) => {
  const logged: Array<{ at: number, record: LogRecord }> = []
  const logger: EngineLogger = {
    info () {},
    warn () {},
    error (record: object) { logged.push({ at: performance.now(), record: record as LogRecord }) }
  }
  const port = await freePort()
  const engine = new RedisEngine({
    url: `redis://:s3cret@127.0.0.1:${port}`,
    keyPrefix: 'boot:',
    commandTimeoutMs: 500,
    logger,
    relay: DEFAULT_RELAY_SETTINGS,
    unreachableLogIntervalMs: 1000
  })
  t.teardown(async () => { await engine.close() })
  await sleep(4500)

  t.ok(logged.length >= 2 && logged.length <= 5, `a few lines in 4.5 s at one per second at most (got ${logged.length})`)
  t.match(logged[0]?.record, { event: 'engine.redis.unreachable', target: `127.0.0.1:${port}`, code: 'ECONNREFUSED', attempts: 1, failuresSinceLastLog: 1 })
  let counted = 0
  for (const [index, { at, record }] of logged.entries()) {
    t.equal(record.event, 'engine.redis.unreachable')
    counted += record.failuresSinceLastLog as number
    t.equal(record.attempts, counted, `line ${index}: attempts is the sum of the failures reported so far`)
    if (index > 0) t.ok(at - (logged[index - 1]?.at ?? 0) >= 1000, `line ${index} comes an interval after the one before`)
  }
  t.ok(counted > logged.length, 'some failures were counted rather than logged')
  t.notOk(JSON.stringify(logged).includes('s3cret'))
})

void t.test('the target names hosts and ports only, for every topology; messages are scrubbed of secrets', async (t) => {
  t.same(redisTarget({ kind: 'standalone', url: 'rediss://admin:p%40ss@redis.internal:6380/2' }), { target: 'redis.internal:6380' })
  t.same(redisTarget({ kind: 'standalone', url: 'redis://:pw@[::1]' }), { target: '[::1]:6379' }, 'IPv6, default port')
  t.same(redisTarget({ kind: 'standalone', url: 'redis://' }), { target: 'localhost:6379' }, 'ioredis\'s defaults')
  t.same(redisTarget({
    kind: 'sentinel',
    sentinels: [{ host: '10.0.0.1', port: 26379 }, { host: 'fd00::2', port: 26380 }],
    name: 'mymaster',
    password: 'pw',
    sentinelPassword: 'spw',
    tls: false
  }), { target: '10.0.0.1:26379,[fd00::2]:26380', master: 'mymaster' })
  t.same(redisTarget({ kind: 'cluster', nodes: [{ host: 'a', port: 7000 }, { host: 'b', port: 7001 }], password: 'pw', tls: false }), { target: 'a:7000,b:7001' })

  const records: LogRecord[] = []
  const logger: EngineLogger = { info () {}, warn () {}, error (record: object) { records.push(record as LogRecord) } }
  new RedisUnreachableLog({ logger, topology: { kind: 'standalone', url: 'redis://admin:p%40ss@h:1' } })
    .failed(new Error('server said: AUTH admin p@ss / p%40ss refused'))
  new RedisUnreachableLog({ logger, topology: { kind: 'sentinel', sentinels: [{ host: 'h', port: 1 }], name: 'm', password: 'master-pw', sentinelPassword: 'sentinel-pw', tls: false } })
    .failed(new Error('All sentinels are unreachable. Last error: sentinel-pw master-pw'))
  t.same(records.map((record) => record.reason), [
    'server said: AUTH [redacted] [redacted] / [redacted] refused',
    'All sentinels are unreachable. Last error: [redacted] [redacted]'
  ])
  t.same(records.map((record) => record.code), [undefined, undefined], 'no code when ioredis gives none')
})
