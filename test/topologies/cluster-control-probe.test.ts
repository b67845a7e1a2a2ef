/**
 * SPEC §14 on a Cluster, for the one pub/sub connection that is not sharded: the plain
 * SUBSCRIBE connection carrying the control channel (remote disconnects, bans). Every
 * master is behind a TCP proxy (announced as its `cluster-announce-port`), and both
 * instances' control connections are made deaf. Each instance's probe on that connection
 * misses, /readyz names `pubsub`, the connection is replaced, and a remote disconnect
 * reaches a socket on the other instance again.
 */
import t from 'tap'
import { eventually, requestTicket, startGateway } from '../helpers/gateway.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { PROBE_ENV } from '../helpers/deaf-subscriber.js'
import { readyz } from '../helpers/readyz.js'
import { disconnect } from '../helpers/relay.js'
import { userToken } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'

const INTERVAL_MS = 300
const TIMEOUT_MS = 200
/** A plain SUBSCRIBE in RESP (`$9`): SSUBSCRIBE is `$10`. */
const PLAIN_SUBSCRIBE = /\$9\r\nsubscribe\r\n/i

const cluster = await RedisCluster.start()
t.teardown(async () => { await cluster.stop() })
const proxies: TcpProxy[] = []
for (const port of cluster.ports) {
  const proxy = await TcpProxy.start(port)
  t.teardown(async () => { await proxy.close() })
  proxies.push(proxy)
  await cluster.onNode(port, 'config', 'set', 'cluster-announce-port', String(proxy.port))
}
for (const port of cluster.ports) {
  await eventually(async () => {
    const slots = await cluster.onNode(port, 'cluster', 'slots')
    return proxies.every((proxy) => slots.includes(String(proxy.port))) && cluster.ports.every((real) => !slots.includes(String(real)))
  }, 20_000)
}

const env = { REDIS_CLUSTER_NODES: `127.0.0.1:${proxies[0]!.port}`, ...PROBE_ENV(INTERVAL_MS, TIMEOUT_MS) }
const a = await startGateway(t, env)
const b = await startGateway(t, env)
const READY = { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } }

await t.test('deaf control subscribers: both instances name pubsub, heal by themselves, and control messages flow again', async (t) => {
  for (const gateway of [a, b]) await eventually(async () => (await readyz(gateway.baseUrl)).status === 200, 10_000)
  const client = new TestClient(`${b.wsUrl}?ticket=${await requestTicket(b, await userToken('carol', 'c1'))}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: 'carol' })

  // Selected at random among the nodes, so it may need a moment after boot to be there.
  await eventually(() => proxies.reduce((sum, proxy) => sum + proxy.matching(PLAIN_SUBSCRIBE), 0) === 2, 10_000)
  t.equal(proxies.reduce((sum, proxy) => sum + proxy.deafen(PLAIN_SUBSCRIBE), 0), 2, 'the control connection of each instance is made deaf')
  const deafAt = Date.now()
  // Both watched at once: the first failing answer of each is the one that counts.
  const detections = await Promise.all([a, b].map(async (gateway) => {
    let first: string | undefined
    await eventually(async () => {
      const answer = await readyz(gateway.baseUrl)
      if (answer.body.failing?.includes('pubsub') === true) first = answer.body.checks.pubsub
      return first !== undefined
    }, 10_000)
    return { reason: first, ms: Date.now() - deafAt }
  }))
  for (const [index, detection] of detections.entries()) {
    const name = index === 0 ? 'A' : 'B'
    t.equal(detection.reason, 'fail: probe missed ×2', `${name} names pubsub and the misses`)
    t.ok(detection.ms <= 2 * INTERVAL_MS + TIMEOUT_MS + 500, `${name} named pubsub ${detection.ms} ms after going deaf (bound ${2 * INTERVAL_MS + TIMEOUT_MS} ms)`)
  }

  for (const gateway of [a, b]) await eventually(async () => (await readyz(gateway.baseUrl)).status === 200, 15_000)
  for (const gateway of [a, b]) t.strictSame((await readyz(gateway.baseUrl)).body, READY, 'healed by itself')
  t.equal(proxies.reduce((sum, proxy) => sum + proxy.deafConnections, 0), 0, 'the deaf connections were given up')

  const response = await disconnect(a, { userId: 'carol' })
  t.equal(response.status, 200)
  t.strictSame(await client.closed, { code: 4403, reason: 'SESSION_REVOKED' }, 'a disconnect sent through A reaches the socket on B')
})
