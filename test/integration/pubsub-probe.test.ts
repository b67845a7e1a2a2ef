import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish } from '../helpers/relay.js'
import { readyz } from '../helpers/readyz.js'

/**
 * SPEC §14 on a standalone Redis: the holder's subscriber connection goes through a TCP
 * proxy that makes it deaf (open, nothing delivered) while a backend keeps publishing
 * through another instance. /readyz names `pubsub` within 2 × interval + timeout, the
 * instance heals by itself, and the client gets every message exactly once, in order.
 */
const INTERVAL_MS = 200
const TIMEOUT_MS = 200
const DETECTION_BOUND_MS = 2 * INTERVAL_MS + TIMEOUT_MS

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const proxy = await TcpProxy.start(redis.port)
t.teardown(async () => { await proxy.close() })
const probeEnv = { PUBSUB_PROBE_INTERVAL_MS: String(INTERVAL_MS), PUBSUB_PROBE_TIMEOUT_MS: String(TIMEOUT_MS), WS_MESSAGE_BURST: '1000' }
const publisher = await startGateway(t, { REDIS_URL: redis.url, ...probeEnv })
const holder = await startGateway(t, { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, ...probeEnv })

async function subscribe (gateway: Gateway): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['feed:*'] })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.teardown(() => { client.socket.terminate() })
  await client.frame(0)
  client.send({ type: 'subscribe', channel: 'feed:live', id: 'sub' })
  t.match(await client.frame(1), { type: 'subscribed', id: 'sub', recovered: true })
  return client
}

/** A backend that publishes 0, 1, 2... every 20 ms until stopped; each number once (200 or it stops the test). */
function backend (): { stop: () => Promise<number> } {
  let next = 0
  let running = true
  const loop = (async () => {
    while (running) {
      const answer = await publish(publisher, { channel: 'feed:live', data: next, idempotencyKey: `m${next}` })
      if (answer.status !== 200) throw new Error(`publish ${next}: ${answer.status}`)
      next += 1
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  return { stop: async () => { running = false; await loop; return next } }
}

function messagesOf (client: TestClient): unknown[] {
  return client.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)
}

await t.test('a deaf subscriber fails readiness naming pubsub, heals by itself, and nothing is lost or doubled', async (t) => {
  const client = await subscribe(holder)
  t.strictSame(await readyz(holder.baseUrl), { status: 200, body: { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } } })
  const publishing = backend()
  await eventually(() => messagesOf(client).length >= 5)

  t.equal(proxy.deafen(/SUBSCRIBE/i), 1, 'exactly the subscriber connection is made deaf')
  const deafAt = Date.now()
  let failed: Awaited<ReturnType<typeof readyz>> | undefined
  await eventually(async () => {
    const answer = await readyz(holder.baseUrl)
    if (answer.body.failing?.includes('pubsub') === true) failed = answer
    return failed !== undefined
  }, 10_000)
  const detectedMs = Date.now() - deafAt
  t.equal(failed?.status, 503)
  t.equal(failed?.body.checks.pubsub, 'fail: probe missed ×2', 'the reason names the misses')
  // The bound of SPEC §14 plus the poll's own granularity (25 ms) and a loaded machine's slack.
  t.ok(detectedMs <= DETECTION_BOUND_MS + 500, `pubsub failed ${detectedMs} ms after the subscriber went deaf (bound ${DETECTION_BOUND_MS} ms)`)

  await eventually(async () => (await readyz(holder.baseUrl)).status === 200, 10_000)
  t.strictSame((await readyz(holder.baseUrl)).body, { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } }, 'healed by itself')
  t.equal(proxy.deafConnections, 0, 'the deaf connection was given up')
  const afterHeal = messagesOf(client).length
  await eventually(() => messagesOf(client).length >= afterHeal + 5)
  const published = await publishing.stop()

  await eventually(() => messagesOf(client).length >= published, 10_000)
  await new Promise((resolve) => setTimeout(resolve, 3 * INTERVAL_MS))
  t.strictSame(messagesOf(client), Array.from({ length: published }, (_, index) => index), `all ${published} messages, once each, in order`)
  const seqs = client.frames.filter((frame) => frame.type === 'message').map((frame) => Number(String(frame.offset).split(':')[1]))
  t.strictSame(seqs, Array.from({ length: published }, (_, index) => index + 1), 'offsets without a gap or a repeat')

  const metrics = await (await fetch(`${holder.baseUrl}/metrics`)).text()
  t.match(metrics, /rtgw_pubsub_probe_heals_total 1\n/, 'one heal')
  t.match(metrics, /rtgw_pubsub_probe_misses_total [2-9]\n/, 'the misses counted')
  t.match(metrics, /rtgw_pubsub_probe_round_trip_seconds_count [1-9]\d*\n/, 'round trips observed')
})
