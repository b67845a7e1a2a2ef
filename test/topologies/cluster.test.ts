/**
 * Two gateway instances on a real 3-master Redis Cluster (started here, with a
 * password, and stopped by pid): the ticket, relay and upstream flows across
 * instances, the control channel, and the key and pub/sub layout the engine
 * promises (docs/redis.md): one hash slot per script, sharded pub/sub per channel.
 */
import t from 'tap'
import { startGateway } from '../helpers/gateway.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { disconnect } from '../helpers/relay.js'
import { connect, publishAcrossInstances, resumeAcrossInstances, sendAcked, ticketOnceAcrossInstances } from './flows.js'

const PASSWORD = 'cluster-secret'
const cluster = await RedisCluster.start({ password: PASSWORD })
t.teardown(async () => { await cluster.stop() })

// One seed node is enough: the rest of the cluster is discovered.
const env = {
  REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.ports[0]!}`,
  REDIS_USERNAME: 'default',
  REDIS_PASSWORD: PASSWORD,
  WS_MESSAGE_BURST: '1000',
  TICKET_RATE_LIMIT_PER_USER: '1000'
}
const a = await startGateway(t, env)
const b = await startGateway(t, env)

/** Channel names whose keys land on each master in turn (found by asking the cluster). */
async function channelsOnEveryMaster (): Promise<string[]> {
  const byNode = new Map<number, string>()
  for (let n = 0; byNode.size < cluster.ports.length; n += 1) {
    if (n > 200) throw new Error('no channel found for every master')
    const channel = `chat:room-${n}`
    const node = await cluster.nodeOf(`rtgw:{ch:${channel}}:meta`)
    if (!byNode.has(node)) byNode.set(node, channel)
  }
  return [...byNode.values()]
}
const spread = await channelsOnEveryMaster()

await t.test('both instances run the Redis engine on the cluster and are ready', async (t) => {
  for (const gateway of [a, b]) {
    t.equal(gateway.app.engine.kind, 'redis')
    t.equal((gateway.app.engine as { topology?: string }).topology, 'cluster')
    const response = await fetch(`${gateway.baseUrl}/readyz`)
    t.equal(response.status, 200)
    t.match(await response.json(), { status: 'ready', checks: { redis: { status: 'ok' }, pubsub: { status: 'ok' } } })
  }
})

await t.test('a ticket issued on A is consumed on B exactly once', async (t) => {
  await ticketOnceAcrossInstances(t, a, b)
})

await t.test('a publish on A reaches a subscriber on B, for channels on every master', async (t) => {
  t.equal(new Set(await Promise.all(spread.map(async (channel) => await cluster.nodeOf(`rtgw:{ch:${channel}}:meta`)))).size, 3,
    'the channels live on three different masters')
  await publishAcrossInstances(t, a, b, spread)
})

await t.test('resume with since on the other instance: the missed messages, then live', async (t) => {
  await resumeAcrossInstances(t, a, b, 'chat:resume')
})

await t.test('send is acked and appended once to the inbound stream', async (t) => {
  const port = await cluster.nodeOf('rtgw:inbound')
  const node = cluster.nodeClient(port)
  t.teardown(() => { node.disconnect() })
  await sendAcked(t, a, b, async () => await node.xrange('rtgw:inbound', '-', '+'))
})

await t.test('POST /v1/disconnect on A closes the session on B with 4403 (the control channel)', async (t) => {
  const onB = await connect(t, b, 'carol', 'revoked')
  const response = await disconnect(a, { sessionId: 'revoked' })
  t.equal(response.status, 200)
  t.strictSame(await onB.closed, { code: 4403, reason: 'SESSION_REVOKED' })
})

await t.test('channels use sharded pub/sub on their own slot; the control channel is a plain channel', async (t) => {
  const channel = spread[1]!
  const client = await connect(t, b, 'alice', 'layout')
  client.send({ type: 'subscribe', channel, id: 'sub' })
  t.match(await client.frame(1), { type: 'subscribed', channel, id: 'sub' })

  const live = `rtgw:{ch:${channel}}:live`
  const owner = await cluster.nodeOf(live)
  t.equal(owner, await cluster.nodeOf(`rtgw:{ch:${channel}}:meta`), 'the shard channel is served by the node holding the channel keys')
  t.ok((await cluster.onNode(owner, 'pubsub', 'shardchannels')).includes(live), `${live} is a shard channel on its owner`)
  const plain = (await Promise.all(cluster.ports.map(async (port) => await cluster.onNode(port, 'pubsub', 'channels')))).flat()
  t.ok(plain.includes('rtgw:control'), 'rtgw:control is subscribed with SUBSCRIBE (it must reach every instance)')
  t.strictSame(plain.filter((name) => name.endsWith(':live')), [], 'no channel fan-out over classic pub/sub')
  client.close()
})

await t.test('every key sits under the prefix, and keys that a script touches together share one slot', async (t) => {
  const keys = await cluster.keys('rtgw:*')
  t.ok(keys.length > 0)
  const slotOf = new Map<string, number>()
  for (const key of keys) slotOf.set(key, await cluster.slotOf(key))

  const channelKeys = keys.filter((key) => key.startsWith('rtgw:{ch:'))
  const owners = new Set(await Promise.all(channelKeys.map(async (key) => await cluster.nodeOf(key))))
  t.equal(owners.size, 3, 'channel keys are spread over all three masters')
  const tags = new Set(channelKeys.map((key) => /^rtgw:\{(ch:[^}]*)\}/.exec(key)![1]!))
  t.ok(tags.has(`ch:${spread[0]!}`) && tags.has('ch:chat:resume'), 'the channels used above are there')
  for (const tag of tags) {
    const slots = new Set(channelKeys.filter((key) => key.startsWith(`rtgw:{${tag}}`)).map((key) => slotOf.get(key)))
    slots.add(await cluster.slotOf(`rtgw:{${tag}}:live`))
    t.equal(slots.size, 1, `${tag}: meta, history and the shard channel share a slot`)
  }

  const inboundSlot = slotOf.get('rtgw:inbound')
  t.not(inboundSlot, undefined, 'the inbound stream exists')
  const dedupe = keys.filter((key) => key.startsWith('rtgw:{rtgw:inbound}:seen:'))
  t.strictSame(dedupe, ['rtgw:{rtgw:inbound}:seen:upstream:m1'], 'one dedupe key per (session, id)')
  t.equal(slotOf.get(dedupe[0]!), inboundSlot, 'the dedupe key shares the stream slot (append-inbound.lua)')

  t.ok(keys.some((key) => key.startsWith('rtgw:ratelimit:')), 'the per-user ticket limit counts in the cluster too')
  // Crash disconnects (SPEC §12): the heartbeats, one key; each instance's connection hash is a key on its own.
  t.ok(keys.includes('rtgw:instances'), 'the instances heartbeat')
  t.strictSame(keys.filter((key) => key.startsWith('rtgw:instance:') && !/^rtgw:instance:\{[0-9a-f-]{36}\}:conns$/.test(key)), [], 'instance hashes tagged by their instance id')
  // A session's registry entry (SPEC §11) may still be there: its removal runs after the close, beside this read.
  t.strictSame(keys.filter((key) => key.startsWith('rtgw:user:') && !/^rtgw:user:\{[^}]+\}:(conns|details)$/.test(key)), [], 'user registries tagged by their user id')
  const other = keys.filter((key) => !key.startsWith('rtgw:{ch:') && !key.startsWith('rtgw:{rtgw:inbound}:') &&
    key !== 'rtgw:inbound' && !key.startsWith('rtgw:ratelimit:') && !key.startsWith('rtgw:ticket:') &&
    key !== 'rtgw:instances' && !key.startsWith('rtgw:instance:{') && !key.startsWith('rtgw:user:{'))
  t.strictSame(other, [], 'no other kind of key')
})
