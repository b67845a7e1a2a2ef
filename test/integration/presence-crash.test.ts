/**
 * An instance SIGKILLed (SPEC §11, §12): a separate gateway process holding a user in a
 * presence channel dies without any cleanup. Its presence entries and its heartbeat
 * lapse within PRESENCE_TTL_SECONDS; the surviving instance then sends exactly one
 * `leave`, GET /v1/presence stops listing the user, and the crashed connection gets
 * its one `disconnect` lifecycle event (code 1006, reason INSTANCE_LOST), written by
 * the instance that claimed the dead one.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, statusOf, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { serviceToken } from '../helpers/relay.js'
import { Redis } from 'ioredis'
import { sleep } from '../helpers/async.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const TTL_SECONDS = 2
const LEAVE_DELAY_MS = 300
const env = {
  REDIS_URL: redis.url,
  JWT_SECRET: TEST_SECRET,
  PRESENCE_CHANNELS: 'room:*',
  PRESENCE_TTL_SECONDS: String(TTL_SECONDS),
  PRESENCE_LEAVE_DELAY_MS: String(LEAVE_DELAY_MS),
  LIFECYCLE_EVENTS: 'connect,disconnect,join,leave'
}

async function session (gateway: Gateway, sub: string): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub, sessionId: `${sub}-session`, channels: ['room:*'] })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  return client
}

await t.test('SIGKILL of the instance holding alice: one leave within the TTL, gone from GET /v1/presence, one disconnect event', async (t) => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent' },
    stdio: 'ignore'
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const doomed: Gateway = { app: undefined as never, config: undefined as never, baseUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` }
  await eventually(async () => await statusOf(`${doomed.baseUrl}/readyz`) === 200, 30_000)
  const survivor = await startGateway(t, env)
  const presenceToken = await serviceToken('gateway:presence')
  const presence = async (query: string): Promise<Record<string, unknown>> =>
    await (await fetch(`${survivor.baseUrl}/v1/presence?${query}`, { headers: { authorization: `Bearer ${presenceToken}` } })).json() as Record<string, unknown>

  const bob = await session(survivor, 'bob')
  bob.send({ type: 'subscribe', channel: 'room:crash', id: 'b' })
  t.match(await bob.frame(1), { type: 'subscribed', id: 'b' })
  const alice = await session(doomed, 'alice')
  alice.send({ type: 'subscribe', channel: 'room:crash', id: 'a' })
  t.match(await alice.frame(1), { type: 'subscribed', id: 'a' })
  await eventually(() => bob.frames.some((frame) => frame.type === 'join' && frame.userId === 'alice'))
  t.match(await presence('channel=room%3Acrash'), { totalUsers: 2, totalConnections: 2 })
  const aliceConnect = (await survivor.app.engine.readEvents(100)).find((event) => event.event === 'connect' && event.userId === 'alice')
  if (aliceConnect === undefined) throw new Error('no connect event of alice')

  const exited = once(child, 'exit')
  const killedAt = performance.now()
  child.kill('SIGKILL')
  await exited
  t.equal((await alice.closed).code, 1006, 'the socket died with the process')

  await eventually(() => bob.frames.some((frame) => frame.type === 'leave'), (TTL_SECONDS + 8) * 1000)
  const leftAfterMs = performance.now() - killedAt
  // Entries lapse within the TTL (refreshed every TTL/3), the sweep runs at least every second.
  t.ok(leftAfterMs < (TTL_SECONDS + 6) * 1000, `leave ${Math.round(leftAfterMs)} ms after the SIGKILL (TTL ${TTL_SECONDS} s + slack)`)
  await eventually(async () => (await survivor.app.engine.readEvents(100)).some((event) => event.event === 'disconnect' && event.userId === 'alice'), 10_000)
  await sleep(TTL_SECONDS * 1000)

  t.strictSame(bob.frames.filter((frame) => frame.type === 'leave'), [{ type: 'leave', channel: 'room:crash', userId: 'alice' }], 'exactly one leave')
  t.strictSame(await presence('channel=room%3Acrash'), { channel: 'room:crash', users: [{ userId: 'bob', connections: 1 }], totalUsers: 1, totalConnections: 1, truncated: false })
  t.match(await presence('userId=alice'), { userId: 'alice', online: false, connections: [] })

  const events = (await survivor.app.engine.readEvents(100)).filter((event) => event.userId === 'alice')
  // Both lapse with the TTL: their order is the sweep's, not part of the contract.
  t.strictSame(events.map((event) => event.event).slice(0, 2), ['connect', 'join'], 'connect and join by the dead instance')
  t.strictSame(events.map((event) => event.event).slice(2).sort(), ['disconnect', 'leave'], 'then one leave and one disconnect, by the survivor')
  const { ts, ...disconnect } = events.find((event) => event.event === 'disconnect') ?? {}
  t.match(ts, /^\d+$/)
  t.strictSame(disconnect, {
    event: 'disconnect',
    userId: 'alice',
    sessionId: 'alice-session',
    connectionId: aliceConnect.connectionId,
    instanceId: aliceConnect.instanceId,
    code: '1006',
    reason: 'INSTANCE_LOST',
    reportedBy: survivor.app.lifecycle.instanceId
  }, 'the crashed instance named as the holder, the survivor as the reporter')
  t.equal(events.find((event) => event.event === 'leave')?.instanceId, survivor.app.lifecycle.instanceId, 'the leave was won by the survivor')
})

await t.test('a clean stop retires the instance: no INSTANCE_LOST disconnect afterwards', async (t) => {
  const keys = { REDIS_KEY_PREFIX: 'clean:' }
  const observer = await startGateway(t, { ...env, ...keys })
  const leaving = await startGateway(t, { ...env, ...keys, SHUTDOWN_GRACE_MS: '200' })
  const carol = await session(leaving, 'carol')
  carol.send({ type: 'subscribe', channel: 'room:clean', id: 'c' })
  t.match(await carol.frame(1), { type: 'subscribed' })
  await leaving.app.close()
  await sleep((TTL_SECONDS + 2) * 1000)
  const disconnects = (await observer.app.engine.readEvents(100)).filter((event) => event.event === 'disconnect')
  t.equal(disconnects.length, 1, 'only the one its own instance wrote on close')
  t.match(disconnects[0], { userId: 'carol', instanceId: leaving.app.lifecycle.instanceId })
  t.equal(disconnects[0]?.reason === 'INSTANCE_LOST', false)
})

await t.test('an instance taken for lost while alive registers its connections again at its next heartbeat', async (t) => {
  const gateway = await startGateway(t, { ...env, REDIS_KEY_PREFIX: 'reclaimed:', PRESENCE_TTL_SECONDS: '1' })
  const dave = await session(gateway, 'dave')
  const connectionId = dave.frames[0]?.connectionId
  const admin = new Redis(redis.url)
  t.teardown(() => { admin.disconnect() })
  const instanceId = gateway.app.lifecycle.instanceId
  const held = `reclaimed:instance:{${instanceId}}:conns`
  // The registration runs beside session_established (routes/ws.ts), so it may land just after it.
  await eventually(async () => (await admin.hlen(held)) === 1, 5000)
  t.strictSame(Object.keys(await admin.hgetall(held)), [connectionId], 'the connection is kept with its instance')
  // What a claim by another instance does (instance-claim.lua, instance-take.lua).
  await admin.zrem('reclaimed:instances', instanceId)
  await admin.del(held)
  await eventually(async () => (await admin.hlen(held)) === 1, 5000)
  t.strictSame(Object.keys(await admin.hgetall(held)), [connectionId], 'registered again after the next heartbeat')
  t.not(await admin.zscore('reclaimed:instances', instanceId), null, 'and heartbeating')
})
