/**
 * SPEC §14 behind Sentinel (master + replica + 3 Sentinels, every data node behind a
 * TCP proxy and announced as it). A SENTINEL FAILOVER moves both instances to the new
 * master and the probe passes there: no false alarm once the failover has settled.
 * Then a subscriber is forced onto the demoted master, partitioned from the new one
 * and still claiming the master role (the split brain of Centrifugo #1189): it is
 * open, subscribed, and hears nothing. The probe catches it, the instance heals by
 * itself and the client gets every message exactly once, in order.
 */
import t, { type Test } from 'tap'
import { eventually, type Gateway, startGateway } from '../helpers/gateway.js'
import { RedisSentinel, waitFor } from '../helpers/redis-sentinel.js'
import { run } from '../helpers/redis-server.js'
import { readyz } from '../helpers/readyz.js'
import { PROBE_ENV, deafSubscriberHeals } from '../helpers/deaf-subscriber.js'

const INTERVAL_MS = 300
const TIMEOUT_MS = 200
const READY = { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } }

const setup = await RedisSentinel.start({ name: 'probe-master', proxied: true })
t.teardown(async () => { await setup.stop() })
const env = { REDIS_SENTINELS: setup.sentinelsEnv, REDIS_SENTINEL_NAME: 'probe-master', ...PROBE_ENV(INTERVAL_MS, TIMEOUT_MS) }
const publisher = await startGateway(t, env)
const holder = await startGateway(t, env)
const [first, second] = setup.dataPorts as [number, number]

async function onNode (port: number, ...args: string[]): Promise<string> {
  return await run('redis-cli', ['-p', String(port), ...args])
}

async function metricValue (gateway: Gateway, name: string): Promise<number> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
}

async function replicaCaughtUp (masterPort: number, replicaPort: number): Promise<void> {
  const offset = (info: string, field: string): number => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1)
  await waitFor(async () => offset(await onNode(replicaPort, 'info', 'replication'), 'slave_repl_offset') >=
    offset(await onNode(masterPort, 'info', 'replication'), 'master_repl_offset'), 'replica caught up')
}

await t.test('after SENTINEL FAILOVER the probe passes on the new master: no missed probe once it has settled', async (t) => {
  t.equal(setup.dataPortOf(await setup.masterPort()), first)
  for (const gateway of [publisher, holder]) t.strictSame((await readyz(gateway.baseUrl)).body, READY)
  await replicaCaughtUp(first, second)
  t.equal((await setup.sentinelCommand('sentinel', 'failover', 'probe-master')).trim(), 'OK')
  await waitFor(async () => setup.dataPortOf(await setup.masterPort()) === second && await setup.roleOf(second) === 'master', 'the replica promoted', 60_000)
  // Settled: the old master replicates the new one, and both instances are ready on it.
  await waitFor(async () => await setup.roleOf(first) === 'slave', 'the old master demoted', 60_000)
  for (const gateway of [publisher, holder]) await eventually(async () => (await readyz(gateway.baseUrl)).status === 200, 30_000)

  const before = await Promise.all([publisher, holder].map(async (gateway) => ({
    misses: await metricValue(gateway, 'rtgw_pubsub_probe_misses_total'),
    heals: await metricValue(gateway, 'rtgw_pubsub_probe_heals_total'),
    roundTrips: await metricValue(gateway, 'rtgw_pubsub_probe_round_trip_seconds_count')
  })))
  await new Promise((resolve) => setTimeout(resolve, 10 * INTERVAL_MS))
  for (const [index, gateway] of [publisher, holder].entries()) {
    const name = index === 0 ? 'publisher' : 'holder'
    t.equal(await metricValue(gateway, 'rtgw_pubsub_probe_misses_total'), before[index]!.misses, `${name}: no probe missed on the new master`)
    t.equal(await metricValue(gateway, 'rtgw_pubsub_probe_heals_total'), before[index]!.heals, `${name}: nothing healed`)
    t.ok(await metricValue(gateway, 'rtgw_pubsub_probe_round_trip_seconds_count') >= before[index]!.roundTrips + 5, `${name}: probes come back on the new master`)
    t.strictSame((await readyz(gateway.baseUrl)).body, READY, `${name}: ready, pubsub ok`)
  }
})

/** The holder's subscriber connection, told by the SUBSCRIBE that carries the test's channel. */
const HOLDER_SUBSCRIBER = /subscribe\r\n(?:\$\d+\r\n[^\r]*\r\n)*?\$\d+\r\nrtgw:\{ch:feed:/i

/** Clients of one node with the gateway's subscriber connection name. */
async function subscribersOn (port: number): Promise<number> {
  return (await onNode(port, 'client', 'list')).split('\n').filter((line) => line.includes('name=realtime-gateway-sub')).length
}

await t.test('a subscriber forced onto the demoted master (partitioned, still a master) is caught and healed', async (t: Test) => {
  const demoted = first
  const current = second
  const proxy = setup.proxies.get(current)!
  await deafSubscriberHeals(t, {
    publisher,
    holder,
    channel: 'feed:forced',
    intervalMs: INTERVAL_MS,
    timeoutMs: TIMEOUT_MS,
    makeDeaf: async (t) => {
      // The old master cut off from the new one, still claiming the role (no replication, so nothing published reaches it).
      t.equal((await onNode(demoted, 'replicaof', 'no', 'one')).trim(), 'OK')
      // New connections to "the master" land on it until the holder's subscriber is there.
      proxy.target = demoted
      t.equal(proxy.drop(HOLDER_SUBSCRIBER), 1, 'the holder\'s subscriber reconnects')
      await eventually(() => proxy.matching(HOLDER_SUBSCRIBER) === 1, 10_000)
      proxy.target = current
      t.equal(await subscribersOn(demoted), 1, 'the holder\'s subscriber is on the demoted master')
      await eventually(() => holder.app.engine.isReady(), 10_000)
    },
    deafLeft: async () => await subscribersOn(demoted)
  })
})
