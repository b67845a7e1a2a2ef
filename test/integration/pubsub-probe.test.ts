import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { PROBE_ENV, deafOnProxy, deafSubscriberHeals } from '../helpers/deaf-subscriber.js'
import { readyz } from '../helpers/readyz.js'

/**
 * SPEC §14 on a standalone Redis: the holder's subscriber connection goes through a TCP
 * proxy that makes it deaf (open, nothing delivered) while a backend keeps publishing
 * through another instance, connected directly.
 */
const INTERVAL_MS = 200
const TIMEOUT_MS = 200

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const proxy = await TcpProxy.start(redis.port)
t.teardown(async () => { await proxy.close() })
const publisher = await startGateway(t, { REDIS_URL: redis.url, ...PROBE_ENV(INTERVAL_MS, TIMEOUT_MS) })
const holder = await startGateway(t, { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, ...PROBE_ENV(INTERVAL_MS, TIMEOUT_MS) })

await t.test('a deaf subscriber fails readiness naming pubsub, heals by itself, and nothing is lost or doubled', async (t) => {
  await deafSubscriberHeals(t, { publisher, holder, ...deafOnProxy(proxy, /SUBSCRIBE/i), channel: 'feed:live', intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS })
})

await t.test('twice in a row: every deaf period is found and healed', async (t) => {
  await deafSubscriberHeals(t, { publisher, holder, ...deafOnProxy(proxy, /SUBSCRIBE/i), channel: 'feed:again', intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS })
})

await t.test('the embedded engine has no pub/sub to probe: /readyz names `engine`', async (t) => {
  const embedded = await startGateway(t, {})
  t.strictSame(await readyz(embedded.baseUrl), { status: 200, body: { status: 'ready', checks: { engine: 'ok', draining: 'ok' } } })
})
