/**
 * SPEC §14 on a real 3-master Redis Cluster: one master is reached through a TCP proxy
 * (its `cluster-announce-port` is the proxy's, so CLUSTER SLOTS sends every client
 * there), and only the holder's sharded subscriber to that master is made deaf. The
 * probe of that master misses, /readyz names `pubsub`, that master's subscriber is
 * replaced and the channel re-syncs from history.
 */
import t from 'tap'
import { eventually, startGateway } from '../helpers/gateway.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { PROBE_ENV, deafOnProxy, deafSubscriberHeals } from '../helpers/deaf-subscriber.js'

const INTERVAL_MS = 300
const TIMEOUT_MS = 200
const CHANNEL = 'feed:sharded'

const cluster = await RedisCluster.start()
t.teardown(async () => { await cluster.stop() })
const master = await cluster.nodeOf(`rtgw:{ch:${CHANNEL}}:meta`)
const seed = cluster.ports.find((port) => port !== master)!
const proxy = await TcpProxy.start(master)
t.teardown(async () => { await proxy.close() })
await cluster.onNode(master, 'config', 'set', 'cluster-announce-port', String(proxy.port))
// Gossip carries the new port to every node: the gateways refresh the slot map from any of
// them, and one still naming the old port would move the subscriber off the proxy.
for (const port of cluster.ports) {
  await eventually(async () => {
    const slots = await cluster.onNode(port, 'cluster', 'slots')
    return slots.includes(String(proxy.port)) && !slots.includes(String(master))
  }, 20_000)
}

const env = { REDIS_CLUSTER_NODES: `127.0.0.1:${seed}`, ...PROBE_ENV(INTERVAL_MS, TIMEOUT_MS) }
const publisher = await startGateway(t, env)
const holder = await startGateway(t, env)

await t.test('the channel lives on the proxied master', async (t) => {
  t.equal(await cluster.nodeOf(`rtgw:{ch:${CHANNEL}}:meta`), proxy.port, 'CLUSTER SLOTS names the proxy for that master')
})

await t.test('one master\'s deaf sharded subscriber fails readiness naming pubsub, heals by itself, nothing lost or doubled', async (t) => {
  // Only a sharded subscriber SSUBSCRIBEs a client channel: the holder's to this master (the
  // publisher has no client; every instance's probe channels have no `{ch:`).
  await deafSubscriberHeals(t, {
    publisher, holder, ...deafOnProxy(proxy, /ssubscribe\r\n\$\d+\r\nrtgw:\{ch:feed:/i), channel: CHANNEL, intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS
  })
})
