/**
 * The SDK side of SPEC §9 against a real gateway and Redis: `client.publish` (allowed,
 * refused, `from` on what subscribers receive, idempotency, at most once without a key)
 * and subscription token providers (asked once per `subscribe` frame, never a cached
 * token after a reconnect, one fresh token after CHANNEL_TOKEN_INVALID).
 */
import t from 'tap'
import WebSocket from 'ws'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, startGateway } from '../helpers/gateway.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish as backendPublish } from '../helpers/relay.js'
import { rejectionOf, sleep } from '../helpers/async.js'
import { mintChannelToken, mintDevToken } from '../../src/server/dev/dev-token.js'
import { RealtimeClient, type ChannelMessage, type RealtimeClientOptions } from '../../packages/client/src/realtime-client.js'
import { GatewayClientError } from '../../packages/client/src/errors.js'
import type { WebSocketConstructor } from '../../packages/client/src/websocket.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const gateway = await startGateway(t, { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000', TICKET_RATE_LIMIT_PER_USER: '10000' })

interface Teardown { teardown (fn: () => unknown): void }
interface Grants { readonly channels?: string[], readonly publish?: string[] }

/** Every socket the client opened and every frame it wrote, so a test can cut one and count subscribes. */
function watchedWebSocket (): { WebSocket: WebSocketConstructor, sockets: WebSocket[], written: Array<Record<string, unknown>> } {
  const sockets: WebSocket[] = []
  const written: Array<Record<string, unknown>> = []
  class Watched extends WebSocket {
    constructor (url: string) {
      super(url)
      sockets.push(this)
    }

    override send (text: string): void {
      written.push(JSON.parse(text) as Record<string, unknown>)
      super.send(text)
    }
  }
  return { WebSocket: Watched as unknown as WebSocketConstructor, sockets, written }
}

function clientOf (t: Teardown, sub: string, grants: Grants, options: Partial<RealtimeClientOptions> = {}): RealtimeClient {
  const client = new RealtimeClient({
    url: gateway.baseUrl,
    getToken: async () => await mintDevToken({ secret: TEST_SECRET, sub, sessionId: `${sub}-session`, ...grants }),
    WebSocket,
    page: null,
    backoff: { initialMs: 20, maxMs: 50 },
    ...options
  })
  t.teardown(() => { client.close() })
  return client
}

function messagesOf (client: RealtimeClient): ChannelMessage[] {
  const seen: ChannelMessage[] = []
  client.on('message', (message) => { seen.push(message) })
  return seen
}

await t.test('publish allowed by the claim: resolves to { channel, offset }; subscribers get it with from', async (t) => {
  const alice = clientOf(t, 'alice', { channels: ['room:*'], publish: ['room:*'] })
  const bob = clientOf(t, 'bob', { channels: ['room:*'] })
  await Promise.all([alice.connect(), bob.connect()])
  const received = messagesOf(bob)
  await bob.subscribe('room:one')

  const published = await alice.publish('room:one', { text: 'hi' })
  t.strictSame(Object.keys(published).sort(), ['channel', 'offset'])
  t.equal(published.channel, 'room:one')
  t.match(published.offset, /^[A-Za-z0-9_-]+:1$/)
  await eventually(() => received.length === 1)
  t.strictSame(received[0], { channel: 'room:one', offset: published.offset, data: { text: 'hi' }, from: 'alice' })

  const backend = await backendPublish(gateway, { channel: 'room:one', data: 'from the backend' })
  await eventually(() => received.length === 2)
  t.strictSame(received[1], { channel: 'room:one', offset: backend.body.offset, data: 'from the backend' }, 'a backend publish has no from')
})

await t.test('publish outside the claim: rejected with FORBIDDEN_CHANNEL, the client carries on', async (t) => {
  const alice = clientOf(t, 'alice', { channels: ['room:*'], publish: ['room:*'] })
  await alice.connect()
  const error = await rejectionOf(alice.publish('news:1', 'nope'))
  t.type(error, GatewayClientError)
  t.equal((error as GatewayClientError).code, 'FORBIDDEN_CHANNEL')
  t.equal((error as GatewayClientError).action, 'fix')
  t.equal(alice.status, 'open')
  t.equal(alice.getConnectionStatus().pendingSends, 0, 'nothing left waiting')
  t.match(await alice.publish('room:two', 1), { channel: 'room:two' })
})

await t.test('idempotencyKey: a retried publish gets the same offset and is delivered once', async (t) => {
  const alice = clientOf(t, 'alice', { channels: ['room:*'], publish: ['room:*'] })
  await alice.connect()
  const received = messagesOf(alice)
  await alice.subscribe('room:idem')
  const first = await alice.publish('room:idem', 'first', { idempotencyKey: 'k1' })
  const again = await alice.publish('room:idem', 'again', { idempotencyKey: 'k1' })
  t.equal(again.offset, first.offset)
  await eventually(() => received.length === 1)
  await sleep(200)
  t.strictSame(received.map((message) => message.data), ['first'])
})

await t.test('a publish lost with its socket: sent again with its key (once in the channel), failed without one', async (t) => {
  const watched = watchedWebSocket()
  const alice = clientOf(t, 'alice', { channels: ['room:*'], publish: ['room:*'] }, { WebSocket: watched.WebSocket })
  await alice.connect()
  const received = messagesOf(alice)
  await alice.subscribe('room:lost')
  // Written, then the socket dies before any answer can arrive.
  const keyed = alice.publish('room:lost', 'keyed', { idempotencyKey: 'lost-1' })
  const unkeyed = alice.publish('room:lost', 'unkeyed')
  watched.sockets[0]?.terminate()
  const error = await rejectionOf(unkeyed)
  t.equal((error as GatewayClientError).code, 'PUBLISH_UNCONFIRMED', 'without a key: never sent twice')
  const result = await keyed
  t.equal(result.channel, 'room:lost')
  await eventually(() => received.some((message) => message.data === 'keyed'))
  await sleep(200)
  t.equal(received.filter((message) => message.data === 'keyed').length, 1, 'the keyed publish is in the channel once')
  t.equal(watched.written.filter((frame) => frame.type === 'publish' && frame.idempotencyKey === 'lost-1').length, 2, 'it went out on both sockets')
})

const channelToken = async (channel: string, expiresIn: string | number = '10m', sub = 'alice'): Promise<string> =>
  await mintChannelToken({ secret: TEST_SECRET, sub, channel, expiresIn })

await t.test('token provider: a valid token subscribes a channel the JWT does not grant', async (t) => {
  const calls: string[] = []
  const alice = clientOf(t, 'alice', { channels: ['room:*'] })
  await alice.connect()
  const received = messagesOf(alice)
  const info = await alice.subscribe('doc:1', { token: async () => { calls.push('doc:1'); return await channelToken('doc:1') } })
  t.match(info, { channel: 'doc:1', recovered: true })
  t.strictSame(calls, ['doc:1'])
  await backendPublish(gateway, { channel: 'doc:1', data: { edit: 1 } })
  await eventually(() => received.length === 1)
  t.strictSame(received[0]?.data, { edit: 1 })
})

await t.test('token provider: asked again for every resubscribe; the expired token is never sent again (N subscribes, N calls)', async (t) => {
  const watched = watchedWebSocket()
  const alice = clientOf(t, 'alice', { channels: ['room:*'] }, { WebSocket: watched.WebSocket })
  await alice.connect()
  const received = messagesOf(alice)
  const issued: string[] = []
  // Each token lives 2 s: the one of the first subscribe has expired by the reconnect.
  const provider = async (): Promise<string> => {
    const token = await channelToken('doc:2', Math.floor(Date.now() / 1000) + 2)
    issued.push(token)
    return token
  }
  await alice.subscribe('doc:2', { token: provider })
  await sleep(2500)
  for (let reconnect = 1; reconnect <= 2; reconnect++) {
    const confirmed = new Promise((resolve) => { const off = alice.on('subscribed', (info) => { if (info.channel === 'doc:2') { off(); resolve(info) } }) })
    watched.sockets.at(-1)?.terminate()
    await confirmed
  }
  const subscribes = watched.written.filter((frame) => frame.type === 'subscribe' && frame.channel === 'doc:2')
  t.equal(subscribes.length, 3, 'one subscribe per session')
  t.equal(issued.length, 3, 'one token call per subscribe')
  t.strictSame(subscribes.map((frame) => frame.token), issued, 'each subscribe carries the token fetched for it')
  t.not(subscribes[1]?.token, subscribes[0]?.token, 'the expired token was not sent after the reconnect')
  t.equal(watched.sockets.length, 3)
  const published = await backendPublish(gateway, { channel: 'doc:2', data: 'after two reconnects' })
  await eventually(() => received.length === 1)
  t.equal(received[0]?.offset, published.body.offset)
})

await t.test('CHANNEL_TOKEN_INVALID: one fresh token and a retry; a second refusal fails the subscription (event + rejection)', async (t) => {
  const alice = clientOf(t, 'alice', { channels: ['room:*'] })
  await alice.connect()
  const errors: GatewayClientError[] = []
  alice.on('error', (error) => { errors.push(error) })

  // The first token has already expired; the fresh one works.
  let calls = 0
  const recovering = async (): Promise<string> => ++calls === 1 ? await channelToken('doc:3', Math.floor(Date.now() / 1000) - 60) : await channelToken('doc:3')
  t.match(await alice.subscribe('doc:3', { token: recovering }), { channel: 'doc:3' })
  t.equal(calls, 2, 'refused once, asked once more')
  t.equal(errors.length, 0, 'a refusal the fresh token cures is no error')

  // Always a token for another user: refused twice, then failed for good.
  let wrong = 0
  const error = await rejectionOf(alice.subscribe('doc:4', { token: async () => { wrong += 1; return await channelToken('doc:4', '10m', 'bob') } }))
  t.equal((error as GatewayClientError).code, 'CHANNEL_TOKEN_INVALID')
  t.equal((error as GatewayClientError).action, 'reauth')
  t.equal(wrong, 2, 'exactly one retry')
  t.strictSame(errors.map((e) => e.code), ['CHANNEL_TOKEN_INVALID'], 'the error event')
  await sleep(200)
  t.equal(wrong, 2, 'nothing more is asked after the failure')
  t.equal(alice.status, 'open')

  // A provider that throws fails that subscription alone.
  const failed = await rejectionOf(alice.subscribe('doc:5', { token: async () => { throw new Error('backend down') } }))
  t.equal((failed as GatewayClientError).code, 'CHANNEL_TOKEN_UNAVAILABLE')
})
