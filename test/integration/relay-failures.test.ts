import t, { type Test } from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish } from '../helpers/relay.js'

/**
 * SPEC §5 under failure: a subscriber either receives every message, in order, or is
 * told `recovered:false` — never a silent gap.
 */
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const env = { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000' }
const publisher = await startGateway(t, env)
const holder = await startGateway(t, env)

async function subscriber (): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['feed:*'] })
  const client = new TestClient(`${holder.wsUrl}?ticket=${await requestTicket(holder, token)}`)
  t.teardown(() => { client.socket.terminate() })
  await client.frame(0)
  client.send({ type: 'subscribe', channel: 'feed:live' })
  t.match(await client.frame(1), { type: 'subscribed', recovered: true })
  return client
}

/** Every message frame continues its predecessor, or follows a recovered:false notice. */
function assertNoSilentGap (t: Test, frames: Array<Record<string, unknown>>): { delivered: number, notices: number } {
  let position: { epoch: string, seq: number } | undefined
  let delivered = 0
  let notices = 0
  for (const frame of frames) {
    if (frame.type === 'subscribed') {
      const [epoch, seq] = String(frame.offset).split(':')
      position = { epoch: epoch!, seq: Number(seq) }
      if (frame.recovered === false) notices += 1
    } else if (frame.type === 'message') {
      const [epoch, seq] = String(frame.offset).split(':')
      t.equal(epoch, position?.epoch, 'a new epoch is announced before its messages')
      t.equal(Number(seq), (position?.seq ?? 0) + 1, `no gap at ${String(frame.offset)}`)
      position = { epoch: epoch!, seq: Number(seq) }
      delivered += 1
    }
  }
  return { delivered, notices }
}

await t.test('Redis killed and restarted empty mid-stream: every message, or recovered:false', async (t) => {
  const client = await subscriber()
  for (let index = 0; index < 20; index += 1) t.equal((await publish(publisher, { channel: 'feed:live', data: index })).status, 200)
  await client.frame(21)

  await redis.kill()
  await eventually(async () => (await fetch(`${publisher.baseUrl}/readyz`)).status === 503)
  await redis.start()
  await eventually(() => publisher.app.engine.isReady() && holder.app.engine.isReady(), 15_000)

  for (let index = 20; index < 40; index += 1) t.equal((await publish(publisher, { channel: 'feed:live', data: index })).status, 200)
  await eventually(() => client.frames.filter((frame) => frame.type === 'message').length >= 40, 10_000)
  const { delivered, notices } = assertNoSilentGap(t, client.frames.slice(1))
  t.equal(delivered, 40, 'every published message arrived')
  t.equal(notices, 1, 'the lost history was announced once')
  client.close()
})

await t.test('live messages lost by pub/sub are filled from history, in order, before newer ones', async (t) => {
  const client = await subscriber()
  const start = client.frames.length
  const gapFills = async (): Promise<number> => (await holder.app.metrics.gapFills.get()).values[0]?.value ?? 0
  const before = await gapFills()
  // Pub/sub loses messages (as during a Redis reconnect): the holder's engine stops
  // listening behind its relay's back while two messages are published.
  await holder.app.engine.unlisten('feed:live')
  await publish(publisher, { channel: 'feed:live', data: 'missed-1' })
  await publish(publisher, { channel: 'feed:live', data: 'missed-2' })
  await holder.app.engine.listen('feed:live')
  await publish(publisher, { channel: 'feed:live', data: 'after' })
  await client.frame(start + 2)
  await new Promise((resolve) => setTimeout(resolve, 100))
  const received = client.frames.slice(start).filter((frame) => frame.type === 'message').map((frame) => frame.data)
  t.same(received, ['missed-1', 'missed-2', 'after'], 'the gap is filled before the newer message, nothing doubled')
  t.equal(await gapFills(), before + 1, 'rtgw_relay_gap_fills_total counted the fill')
  assertNoSilentGap(t, client.frames.slice(1))
  client.close()
})

await t.test('Redis down: a superseded subscribe gets the same REDIS_NOT_READY as the one that replaced it', async (t) => {
  const flaky = await RedisServer.start()
  t.teardown(async () => { await flaky.stop() })
  const gateway = await startGateway(t, { REDIS_URL: flaky.url })
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['feed:*'] })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.teardown(() => { client.socket.terminate() })
  await client.frame(0)
  // Listened to before Redis goes: there the history read is what fails, not the listen.
  client.send({ type: 'subscribe', channel: 'feed:held', id: 'held' })
  t.match(await client.frame(1), { type: 'subscribed', id: 'held' })
  await flaky.kill()
  await eventually(() => !gateway.app.engine.isReady(), 5000)
  for (const channel of ['feed:down', 'feed:held']) {
    client.send({ type: 'subscribe', channel, id: `${channel}-1` })
    client.send({ type: 'subscribe', channel, since: 'AAAA:1', id: `${channel}-2` })
  }
  await client.frame(5)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.strictSame(client.frames.slice(2), [
    { type: 'error', code: 'REDIS_NOT_READY', id: 'feed:down-1' },
    { type: 'error', code: 'REDIS_NOT_READY', id: 'feed:down-2' },
    { type: 'error', code: 'REDIS_NOT_READY', id: 'feed:held-1' },
    { type: 'error', code: 'REDIS_NOT_READY', id: 'feed:held-2' }
  ], 'one answer per id, the socket stays open')
  client.send({ type: 'ping', id: 'still' })
  t.strictSame(await client.frame(6), { type: 'pong', id: 'still' })
  client.close()
})
