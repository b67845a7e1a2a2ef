/**
 * Two gateway instances behind real Redis Sentinels (master + replica + 3 Sentinels,
 * started here with passwords on both the data nodes and the Sentinels, stopped by
 * pid): the cross-instance flows, then failovers. A demoted master (SENTINEL
 * FAILOVER) and a killed one (SIGKILL) are both followed by the gateway on its own:
 * not ready while there is no master, ready again after the failover, with the
 * channel history intact and live delivery resumed.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { publish } from '../helpers/relay.js'
import { RedisSentinel, waitFor } from '../helpers/redis-sentinel.js'
import { TestClient } from '../helpers/ws-client.js'
import { readyzShape } from '../helpers/readyz.js'
import { connect, messagesOf, publishAcrossInstances, resumeAcrossInstances, sendAcked, ticketOnceAcrossInstances, tokenFor } from './flows.js'

const PASSWORD = 'data-secret'
const SENTINEL_PASSWORD = 'sentinel-secret'
const setup = await RedisSentinel.start({ name: 'gateway-master', password: PASSWORD, sentinelPassword: SENTINEL_PASSWORD })
t.teardown(async () => { await setup.stop() })

const env = {
  REDIS_SENTINELS: setup.sentinelsEnv,
  REDIS_SENTINEL_NAME: 'gateway-master',
  REDIS_SENTINEL_PASSWORD: SENTINEL_PASSWORD,
  REDIS_PASSWORD: PASSWORD,
  WS_MESSAGE_BURST: '1000',
  TICKET_RATE_LIMIT_PER_USER: '1000'
}
const a = await startGateway(t, env)
const b = await startGateway(t, env)

/** Readiness flips of each instance's engine, in order, from here on. */
const flips = new Map<Gateway, boolean[]>([[a, []], [b, []]])
for (const [gateway, seen] of flips) gateway.app.engine.onReadyChange((ready) => { seen.push(ready) })

async function readyz (gateway: Gateway): Promise<{ status: number, body: unknown }> {
  const response = await fetch(`${gateway.baseUrl}/readyz`)
  return { status: response.status, body: await response.json() }
}

/** A client to one data node (not through Sentinel), for inspection. */
async function node (t: Test, port: number): Promise<Redis> {
  // No reconnects: a node killed by the test must not keep this client retrying.
  const client = new Redis({ host: '127.0.0.1', port, password: PASSWORD, lazyConnect: true, retryStrategy: () => null })
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  await client.connect()
  return client
}

/** The replica has applied everything the master wrote: a failover now loses nothing. */
async function replicaCaughtUp (t: Test, masterPort: number, replicaPort: number): Promise<void> {
  const master = await node(t, masterPort)
  const replica = await node(t, replicaPort)
  const offset = (info: string, field: string): number => Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? -1)
  await waitFor(async () => offset(await replica.info('replication'), 'slave_repl_offset') >= offset(await master.info('replication'), 'master_repl_offset'), 'replica caught up')
}

await t.test('both instances find the master through the Sentinels and are ready', async (t) => {
  t.equal(await setup.masterPort(), setup.dataPorts[0])
  for (const gateway of [a, b]) {
    t.equal((gateway.app.engine as { topology?: string }).topology, 'sentinel')
    t.match(await readyz(gateway), { status: 200, body: { status: 'ready', checks: { redis: { status: 'ok' }, pubsub: { status: 'ok' }, draining: { status: 'ok' } } } })
  }
})

await t.test('a ticket issued on A is consumed on B exactly once', async (t) => {
  await ticketOnceAcrossInstances(t, a, b)
})

await t.test('a publish on A reaches a subscriber on B', async (t) => {
  await publishAcrossInstances(t, a, b, ['chat:lobby', 'chat:news'])
})

await t.test('resume with since on the other instance: the missed messages, then live', async (t) => {
  await resumeAcrossInstances(t, a, b, 'chat:resume')
})

await t.test('send is acked and appended once to the inbound stream', async (t) => {
  const master = await node(t, await setup.masterPort())
  await sendAcked(t, a, b, async () => await master.xrange('rtgw:inbound', '-', '+'))
})

/**
 * Subscribes a client on B to `channel`, publishes through A after `failover` and
 * checks that the open socket gets the message with the next seq of the same epoch
 * (history and seq survived on the promoted replica), then that a new session works.
 */
async function survivesFailover (t: Test, channel: string, failover: () => Promise<void>): Promise<void> {
  const subscriber = await connect(t, b, 'alice', `${channel}-sub`)
  subscriber.send({ type: 'subscribe', channel })
  await subscriber.frame(1)
  const before = await publish(a, { channel, data: 'before' })
  t.equal(before.status, 200)
  await subscriber.frame(2)
  const [epoch, seq] = String(before.body.offset).split(':') as [string, string]

  await failover()

  // Right after the failover an instance may still be re-reading its channels; the
  // publish is retried until it answers 200, and the test checks it happened once.
  let after: { status: number, body: Record<string, unknown> } | undefined
  await eventually(async () => {
    after = await publish(a, { channel, data: 'after', idempotencyKey: `${channel}-after` })
    return after.status === 200
  }, 30_000)
  t.equal(after!.body.offset, `${epoch}:${Number(seq) + 1}`, 'the same epoch, the next seq: the history survived the failover')
  await subscriber.frame(3, 15_000)
  t.strictSame(messagesOf(subscriber).map((message) => [message.data, message.offset]),
    [['before', before.body.offset], ['after', after!.body.offset]], 'the open socket on B got the new message once, after the old one')

  const fresh = new TestClient(`${b.wsUrl}?ticket=${await requestTicket(a, await tokenFor('alice', `${channel}-fresh`))}`)
  t.teardown(() => { fresh.socket.terminate() })
  t.match(await fresh.frame(0), { type: 'session_established' }, 'a ticket from A opens a session on B')
  fresh.send({ type: 'subscribe', channel, since: String(before.body.offset), id: 'resume' })
  t.match(await fresh.frame(1), { type: 'subscribed', channel, id: 'resume', recovered: true })
  t.match(await fresh.frame(2), { type: 'message', channel, offset: after!.body.offset, data: 'after' }, 'resume across the failover')
  subscriber.close()
  fresh.close()
}

await t.test('SENTINEL FAILOVER (the old master stays up): the gateway moves to the new master at once, by itself', async (t) => {
  const [first, second] = setup.dataPorts as [number, number]
  for (const seen of flips.values()) seen.length = 0
  await survivesFailover(t, 'chat:demoted', async () => {
    await replicaCaughtUp(t, first, second)
    t.equal((await setup.sentinelCommand('sentinel', 'failover', 'gateway-master')).trim(), 'OK')
    await waitFor(async () => await setup.masterPort() === second && await setup.roleOf(second) === 'master', 'the replica promoted', 60_000)
    for (const seen of flips.values()) await eventually(() => seen.length === 2, 30_000)
    // Sentinel converts the old master into a replica only some seconds after the
    // switch; until then it still accepts writes, which would be lost. The gateway
    // must not wait for that: it follows +switch-master (ioredis' failover detector).
    t.equal(await setup.roleOf(first), 'master', 'both instances reconnected while the old master still claimed the role')
  })
  for (const [gateway, seen] of flips) {
    t.strictSame(seen, [false, true], `${gateway === a ? 'A' : 'B'}: one reconnect, to the new master`)
    t.match(await readyz(gateway), { status: 200 })
  }
  const history = await (await node(t, second)).xrange('rtgw:{ch:chat:demoted}:history', '-', '+')
  t.strictSame(history.map(([, fields]) => fields[1]), ['"before"', '"after"'], 'the message published after the switch is on the new master')
  await waitFor(async () => await setup.roleOf(first) === 'slave', 'the old master demoted', 60_000)
})

await t.test('killing the master: not ready (503s), then Sentinel fails over and the gateway is ready again by itself', async (t) => {
  const master = await setup.masterPort()
  const replica = setup.dataPorts.find((port) => port !== master)!
  t.equal(master, setup.dataPorts[1], 'the master is the node promoted by the previous failover')
  // The previous failover must settle: the old master now replicates the new one.
  await waitFor(async () => (await (await node(t, replica)).info('replication')).includes('master_link_status:up'), 'replica linked')
  for (const seen of flips.values()) seen.length = 0

  await survivesFailover(t, 'chat:killed', async () => {
    await replicaCaughtUp(t, master, replica)
    await setup.kill(master)
    for (const gateway of [a, b]) {
      await eventually(async () => (await readyz(gateway)).status === 503, 10_000)
      t.match(readyzShape((await readyz(gateway)).body), { status: 'not_ready', checks: { redis: /^fail: \S/, pubsub: 'ok', draining: 'ok' }, failing: ['redis'] },
        'readyz names redis, with a reason')
    }
    // Sentinel needs down-after-milliseconds (1 s) before it even starts: still no master.
    const ticket = await fetch(`${a.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await tokenFor('alice', 'during')}` } })
    t.equal(ticket.status, 503, 'no master: tickets answer 503 at once')
    t.match(await ticket.json(), { error: 'SERVICE_UNAVAILABLE', code: 'WS_TICKET_REDIS_NOT_READY' })
    t.ok(ticket.headers.get('retry-after'), 'with Retry-After')

    await waitFor(async () => await setup.masterPort() === replica, 'Sentinel promotes the replica', 60_000)
    for (const gateway of [a, b]) await eventually(async () => (await readyz(gateway)).status === 200, 60_000)
  })
  for (const [gateway, seen] of flips) t.strictSame(seen, [false, true], `${gateway === a ? 'A' : 'B'}: down once, up once`)
  t.equal(await setup.roleOf(replica), 'master')
})
