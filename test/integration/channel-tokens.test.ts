/**
 * Subscription tokens (SPEC §9) on two gateways sharing one real Redis: a backend signs
 * `{ sub, channel, exp, publish? }` with the user-token keys; the gateway lets the
 * subscribe through whatever the JWT's `channels` claim says, and refuses anything
 * invalid, expired or mismatched with CHANNEL_TOKEN_INVALID.
 */
import t from 'tap'
import { SignJWT } from 'jose'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish as backendPublish } from '../helpers/relay.js'
import { mintChannelToken, mintDevToken } from '../../src/server/dev/dev-token.js'

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

const env = { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000' }
const a = await startGateway(t, env)
const b = await startGateway(t, env)

/** Alice's JWT grants no `doc:*` channel at all: only tokens open them. */
async function session (gateway: Gateway, sub = 'alice', channels: string[] = ['chat:*']): Promise<TestClient> {
  const jwt = await mintDevToken({ secret: TEST_SECRET, sub, sessionId: `${sub}-session`, channels })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, jwt)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  return client
}

const token = async (channel: string, extra: { sub?: string, publish?: boolean, expiresIn?: string | number, secret?: string } = {}): Promise<string> =>
  await mintChannelToken({ secret: extra.secret ?? TEST_SECRET, sub: extra.sub ?? 'alice', channel, ...extra })

async function quiet (): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 200))
}

await t.test('a valid token subscribes to a channel the JWT does not grant; messages from the other instance arrive', async (t) => {
  const alice = await session(a)
  alice.send({ type: 'subscribe', channel: 'doc:42', id: 'plain' })
  t.strictSame(await alice.frame(1), { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 'plain' }, 'without a token: refused')
  alice.send({ type: 'subscribe', channel: 'doc:42', id: 'tok', token: await token('doc:42') })
  t.match(await alice.frame(2), { type: 'subscribed', channel: 'doc:42', id: 'tok', recovered: true })
  const published = await backendPublish(b, { channel: 'doc:42', data: { edit: 1 } })
  t.strictSame(await alice.frame(3), { type: 'message', channel: 'doc:42', offset: published.body.offset, data: { edit: 1 } })
})

await t.test('invalid, expired or mismatched tokens: CHANNEL_TOKEN_INVALID with the id, nothing subscribed', async (t) => {
  const alice = await session(a, 'alice', ['chat:*'])
  const noExp = await new SignJWT({ channel: 'doc:1' }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt()
    .sign(new TextEncoder().encode(TEST_SECRET))
  const userJwt = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 'alice-session', channels: ['doc:*'] })
  const cases: Array<[string, string, string]> = [
    ['expired', 'doc:1', await token('doc:1', { expiresIn: Math.floor(Date.now() / 1000) - 60 })],
    ['wrong-sub', 'doc:1', await token('doc:1', { sub: 'bob' })],
    ['wrong-channel', 'doc:1', await token('doc:2')],
    ['prefix-channel', 'doc:1', await token('doc:1:extra')],
    ['bad-signature', 'doc:1', await token('doc:1', { secret: 'another-secret-of-at-least-thirty-two-chars' })],
    ['no-exp', 'doc:1', noExp],
    ['user-jwt', 'doc:1', userJwt],
    ['garbage', 'doc:1', 'not.a.jwt'],
    // The JWT would allow chat:*, but a bad token is still refused, not ignored.
    ['bad-on-allowed', 'chat:room', await token('chat:other')]
  ]
  for (const [id, channel, each] of cases) alice.send({ type: 'subscribe', channel, id, token: each })
  await alice.frame(cases.length)
  await quiet()
  // Channels are independent: answers of different channels may come in any order.
  const byId = (x: Record<string, unknown>, y: Record<string, unknown>): number => String(x.id).localeCompare(String(y.id))
  t.strictSame(alice.frames.slice(1).sort(byId), cases.map(([id]) => ({ type: 'error', code: 'CHANNEL_TOKEN_INVALID', id })).sort(byId))
  await backendPublish(b, { channel: 'doc:1', data: 'unseen' })
  await backendPublish(b, { channel: 'chat:room', data: 'unseen' })
  await quiet()
  t.equal(alice.frames.length, cases.length + 1, 'no message of a refused channel')
})

await t.test('malformed token fields are BAD_MESSAGE', async (t) => {
  const alice = await session(a)
  alice.send({ type: 'subscribe', channel: 'doc:1', id: 'empty', token: '' })
  alice.send({ type: 'subscribe', channel: 'doc:1', id: 'number', token: 42 })
  alice.send({ type: 'subscribe', channel: 'doc:1', id: 'huge', token: 'x'.repeat(8193) })
  await alice.frame(3)
  t.strictSame(alice.frames.slice(1).map((frame) => [frame.code, frame.id]), [['BAD_MESSAGE', 'empty'], ['BAD_MESSAGE', 'number'], ['BAD_MESSAGE', 'huge']])
})

await t.test('publish: true allows publishing on that channel only, for this connection; without it, publish is refused', async (t) => {
  const alice = await session(a)
  const bob = await session(b, 'bob', ['doc:*'])
  bob.send({ type: 'subscribe', channel: 'doc:pub' })
  await bob.frame(1)
  alice.send({ type: 'subscribe', channel: 'doc:read', id: 'r', token: await token('doc:read') })
  alice.send({ type: 'publish', channel: 'doc:read', id: 'p-read', data: 1 })
  // Sent right after the token, before it is verified: it waits for the grant.
  alice.send({ type: 'subscribe', channel: 'doc:pub', id: 'w', token: await token('doc:pub', { publish: true }) })
  alice.send({ type: 'publish', channel: 'doc:pub', id: 'p-pub', data: { n: 1 } })
  alice.send({ type: 'publish', channel: 'doc:other', id: 'p-other', data: 1 })
  await alice.frame(5)
  await quiet()
  // A subscribe's answer waits for its history read, a publish's for Redis, a refusal for
  // nothing: the answers of one channel may come in any order once the token is verified.
  const answersOf = (channel: string): string[] => alice.frames.slice(1)
    .filter((frame) => frame.type !== 'message' && (frame.channel === channel || frame.id === `p-${channel.slice(4)}`))
    .map((frame) => JSON.stringify([frame.type, frame.code ?? frame.channel, frame.id])).sort()
  const sorted = (answers: unknown[][]): string[] => answers.map((answer) => JSON.stringify(answer)).sort()
  t.strictSame(answersOf('doc:read'), sorted([['subscribed', 'doc:read', 'r'], ['error', 'FORBIDDEN_CHANNEL', 'p-read']]))
  t.strictSame(answersOf('doc:pub'), sorted([['published', 'doc:pub', 'p-pub'], ['subscribed', 'doc:pub', 'w']]))
  t.strictSame(answersOf('doc:other'), sorted([['error', 'FORBIDDEN_CHANNEL', 'p-other']]))
  const published = alice.frames.find((frame) => frame.id === 'p-pub')!
  t.match(published, { type: 'published', channel: 'doc:pub', id: 'p-pub' }, 'the publish sent before the token was verified waited for its grant')
  t.strictSame(await bob.frame(2), { type: 'message', channel: 'doc:pub', offset: published.offset, from: 'alice', data: { n: 1 } })

  // Another connection of the same user has no grant: tokens are per connection.
  const other = await session(b)
  other.send({ type: 'publish', channel: 'doc:pub', id: 'elsewhere', data: 2 })
  t.strictSame(await other.frame(1), { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 'elsewhere' })
})

await t.test('ordering while a token is verified: an unsubscribe or subscribe sent after it answers after it (SPEC §5)', async (t) => {
  const alice = await session(a)
  alice.send({ type: 'subscribe', channel: 'doc:order', id: 't1', token: await token('doc:order') })
  alice.send({ type: 'unsubscribe', channel: 'doc:order', id: 'u1' })
  await alice.frame(2)
  await quiet()
  t.strictSame(alice.frames.slice(1), [
    { type: 'unsubscribed', channel: 'doc:order', id: 't1' },
    { type: 'unsubscribed', channel: 'doc:order', id: 'u1' }
  ], 'the token subscribe never took effect; each id answered once, in order')
  await backendPublish(b, { channel: 'doc:order', data: 'after' })
  await quiet()
  t.equal(alice.frames.length, 3, 'nothing of the channel follows')

  // A token subscribe superseded by a plain one sent right after it: both answered
  // with the winner's position (the token's grant lets the plain one through).
  const published = await backendPublish(b, { channel: 'doc:super', data: 1 })
  alice.send({ type: 'subscribe', channel: 'doc:super', id: 't2', token: await token('doc:super') })
  alice.send({ type: 'subscribe', channel: 'doc:super', id: 's2', since: published.body.offset })
  await alice.frame(4)
  await quiet()
  t.strictSame(alice.frames.slice(3), [
    { type: 'subscribed', channel: 'doc:super', id: 't2', offset: published.body.offset, recovered: true },
    { type: 'subscribed', channel: 'doc:super', id: 's2', offset: published.body.offset, recovered: true }
  ])

  // A refused token followed by a plain subscribe: the plain one is judged on the JWT alone.
  alice.send({ type: 'subscribe', channel: 'doc:refused', id: 't3', token: await token('doc:refused', { sub: 'bob' }) })
  alice.send({ type: 'subscribe', channel: 'doc:refused', id: 's3' })
  await alice.frame(6)
  t.strictSame(alice.frames.slice(5), [
    { type: 'error', code: 'CHANNEL_TOKEN_INVALID', id: 't3' },
    { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 's3' }
  ])
})

await t.test('Redis down: a subscribe with a valid token answers REDIS_NOT_READY', async (t) => {
  const flaky = await RedisServer.start()
  t.teardown(async () => { await flaky.stop() })
  const gateway = await startGateway(t, { REDIS_URL: flaky.url })
  const alice = await session(gateway)
  await flaky.kill()
  await eventually(() => !gateway.app.engine.isReady(), 5000)
  alice.send({ type: 'subscribe', channel: 'doc:down', id: 'd', token: await token('doc:down') })
  t.strictSame(await alice.frame(1), { type: 'error', code: 'REDIS_NOT_READY', id: 'd' })
})
