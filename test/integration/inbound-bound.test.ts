import t from 'tap'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { testConfig } from '../helpers/gateway.js'

/**
 * The inbound stream's memory is bounded (issue 9): it is trimmed to about
 * INBOUND_MAX_LENGTH entries, each at most one frame (WS_MAX_PAYLOAD_BYTES), so
 * backends that stop consuming cannot grow Redis without limit.
 */

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

void t.test('the shipped cap is 100,000 entries', async (t) => {
  t.equal(testConfig().inboundMaxLength, 100_000)
})

void t.test('appends past INBOUND_MAX_LENGTH trim the oldest entries: the stream stays near the cap', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'bound:', INBOUND_MAX_LENGTH: '1000' })
  const data = JSON.stringify('x'.repeat(100))
  for (let batch = 0; batch < 30; batch += 1) {
    await Promise.all(Array.from({ length: 100 }, async (_, i) => await gateway.app.engine.appendInbound({
      userId: 'u', sessionId: 's', connectionId: 'c', id: `m-${batch * 100 + i}`, data
    })))
  }
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  const length = await admin.xlen('bound:inbound')
  // XADD MAXLEN ~ trims whole stream nodes (100 entries each by default): a little over the cap, never far.
  t.ok(length >= 1000 && length <= 1100, `3000 appended, ${length} kept (cap 1000)`)
  const newest = await admin.xrevrange('bound:inbound', '+', '-', 'COUNT', 1)
  const fields = newest[0]?.[1] ?? []
  t.equal(fields[fields.indexOf('id') + 1], 'm-2999', 'the newest entry is kept; the oldest went first')
})
