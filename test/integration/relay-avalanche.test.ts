import t from 'tap'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import type { FastifyInstance } from 'fastify'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { publish } from '../helpers/relay.js'
import { sleep } from '../helpers/async.js'

/**
 * A reconnect avalanche (issue 9): hundreds of clients resubscribing to one channel
 * with `since` at once. One instance coalesces their history reads per channel and
 * replays in slices (docs/architecture.md, "Resume under an avalanche"), and SPEC §5
 * still holds for every client: exactly the messages after its `since`, once, in
 * order, then the live ones.
 */
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
// Every client here comes from 127.0.0.1: the per-IP ticket limit would refuse the later ones.
const gateway = await startGateway(t, { REDIS_URL: redis.url, WS_MESSAGE_BURST: '1000', TICKET_RATE_LIMIT_PER_IP: '100000' })

/**
 * Counts the real engine's readHistory calls (the engine itself still answers them);
 * `onRead` runs as each read's answer is handed to the relay.
 */
function countReads (app: FastifyInstance, options: { onRead?: () => void, answerDelayMs?: number } = {}): { readonly count: number, stop: () => void } {
  const engine = app.engine
  const original = engine.readHistory
  let count = 0
  engine.readHistory = async (channel, since) => {
    count += 1
    const read = await original.call(engine, channel, since)
    // A slow answer (a busy Redis): resumes keep arriving while the read is in flight.
    if (options.answerDelayMs !== undefined) await sleep(options.answerDelayMs)
    options.onRead?.()
    return read
  }
  return { get count () { return count }, stop: () => { engine.readHistory = original } }
}

async function connect (target: Gateway, sub: string): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub, sessionId: `s-${sub}`, channels: ['room:*'] })
  const client = new TestClient(`${target.wsUrl}?ticket=${await requestTicket(target, token)}`)
  t.teardown(() => { client.socket.terminate() })
  return client
}

/** `count` clients with their `session_established` received, opened a few at a time. */
async function connectMany (target: Gateway, count: number, prefix: string): Promise<TestClient[]> {
  const clients: TestClient[] = []
  for (let start = 0; start < count; start += 50) {
    const group = await Promise.all(Array.from({ length: Math.min(50, count - start) }, async (_, index) => await connect(target, `${prefix}${start + index}`)))
    for (const client of group) await client.frame(0, 10_000)
    clients.push(...group)
  }
  return clients
}

async function publishMany (target: Gateway, channel: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 100) {
    const messages = Array.from({ length: Math.min(100, count - start) }, (_, index) => ({ channel, data: { n: start + index + 1 } }))
    t.equal((await publish(target, { messages })).status, 200)
  }
}

const seqOf = (offset: unknown): number => Number(String(offset).split(':')[1])

/** `subscribe` with `id` = index, from `sinces[index]` (none when undefined). */
function subscribeAll (clients: TestClient[], channel: string, epoch: string, sinces: Array<number | undefined>, from = 0): void {
  for (const [index, client] of clients.entries()) {
    const since = sinces[from + index]
    client.send(since === undefined ? { type: 'subscribe', channel, id: from + index } : { type: 'subscribe', channel, id: from + index, since: `${epoch}:${since}` })
  }
}

/**
 * The clients whose frames after `session_established` are not exactly: `subscribed`
 * at their since (the head of the read without one), recovered, then every message
 * after it up to `head`, once, in order (messages carry `{ n: seq }`).
 */
function wrongClients (clients: TestClient[], channel: string, epoch: string, sinces: Array<number | undefined>, head: number): string[] {
  const wrong: string[] = []
  for (const [index, client] of clients.entries()) {
    const [, subscribed, ...messages] = client.frames
    const since = sinces[index]
    const from = since ?? seqOf(subscribed?.offset)
    const expected = {
      subscribed: { type: 'subscribed', channel, id: index, offset: `${epoch}:${from}`, recovered: true },
      messages: Array.from({ length: head - from }, (_, offset) => ({ type: 'message', channel, offset: `${epoch}:${from + offset + 1}`, data: { n: from + offset + 1 } }))
    }
    if (JSON.stringify({ subscribed, messages }) !== JSON.stringify(expected)) wrong.push(`client ${index} (since ${String(since)}): ${JSON.stringify(client.frames.slice(1, 3))}`)
  }
  return wrong
}

await t.test('300 resumes of one channel at once: a few history reads; each client gets exactly its suffix, then the live messages', async (t) => {
  const channel = 'room:avalanche'
  await publishMany(gateway, channel, 200)
  const { epoch } = await gateway.app.engine.readHistory(channel)
  const clients = await connectMany(gateway, 300, 'a')
  // Every fourth client subscribes without since; the others from spread-out offsets, some at the head.
  const sinces = clients.map((_, index) => index % 4 === 0 ? undefined : (index * 7) % 201)
  const reads = countReads(gateway.app)
  t.teardown(reads.stop)

  subscribeAll(clients, channel, epoch, sinces)
  // Live messages published during the avalanche.
  for (let n = 201; n <= 205; n += 1) t.equal((await publish(gateway, { channel, data: { n } })).status, 200)

  await eventually(() => clients.every((client) => seqOf(client.frames.at(-1)?.offset) === 205), 30_000)
  await sleep(200)
  t.ok(reads.count <= 5, `${reads.count} history reads for 300 resumes`)
  t.strictSame(wrongClients(clients, channel, epoch, sinces, 205), [], 'every client: subscribed at its since (or the head), then each later message once, in order')
  const plainOffsets = new Set(clients.filter((_, index) => sinces[index] === undefined).map((client) => seqOf(client.frames[1]?.offset)))
  t.ok([...plainOffsets].every((seq) => seq >= 200 && seq <= 205), `plain subscribes start at the head of their read (${[...plainOffsets].join(', ')})`)
  for (const client of clients) client.close()
})

await t.test('a ping from another client is answered while a large replay is being written', async (t) => {
  const channel = 'room:replay'
  await publishMany(gateway, channel, 1000)
  const { epoch } = await gateway.app.engine.readHistory(channel)
  const clients = await connectMany(gateway, 150, 'r')
  const bystander = await connect(gateway, 'bystander')
  await bystander.frame(0)
  const total = clients.length * 1000
  const received = (): number => clients.reduce((sum, client) => sum + client.frames.length - 1, 0)

  // The ping leaves the moment the relay gets the history it replays (150 000 frames).
  let started = 0
  const reads = countReads(gateway.app, {
    onRead: () => {
      if (started !== 0) return
      started = Date.now()
      bystander.send({ type: 'ping', id: 'during' })
    }
  })
  t.teardown(reads.stop)
  const delay = monitorEventLoopDelay({ resolution: 10 })
  delay.enable()
  for (const client of clients) client.send({ type: 'subscribe', channel, since: `${epoch}:0` })
  t.same(await bystander.frame(1, 30_000), { type: 'pong', id: 'during' })
  const elapsed = Date.now() - started
  const receivedAtPong = received()
  await eventually(() => received() === total + clients.length, 60_000)
  delay.disable()
  t.ok(receivedAtPong < total, `the replay was still going when the pong came (${receivedAtPong} of ${total} frames)`)
  t.ok(elapsed < 500, `pong within ${elapsed} ms (bound only catches a stall)`)
  // This process also runs the 150 clients, whose parsing is part of the delay.
  t.comment(`event loop delay during the replay: max ${(delay.max / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms; ${reads.count} read(s)`)
  const client = clients[0]
  t.strictSame(client?.frames.slice(1, 3), [
    { type: 'subscribed', channel, offset: `${epoch}:0`, recovered: true },
    { type: 'message', channel, offset: `${epoch}:1`, data: { n: 1 } }
  ])
  t.equal(client?.frames.filter((frame) => frame.type === 'message').length, 1000)
  for (const each of clients) each.close()
  bystander.close()
})

await t.test('resumes arriving while the read is in flight join it when it covers them, or take the next one', async (t) => {
  const clients = await connectMany(gateway, 200, 'w')
  // The read's answer is slowed down, so the second wave arrives while it is in flight.
  const reads = countReads(gateway.app, { answerDelayMs: 150 })
  t.teardown(reads.stop)

  // Covered: the second wave resumes from at or after the first read's base (50), or plainly.
  const joined = 'room:joined'
  await publishMany(gateway, joined, 100)
  const { epoch: joinedEpoch } = await gateway.app.engine.readHistory(joined)
  const before = reads.count
  const joinedClients = clients.slice(0, 100)
  const joinedSinces = joinedClients.map((_, index) => index < 50 ? 50 + index : (index % 10 === 0 ? undefined : 50 + (index % 50)))
  subscribeAll(joinedClients.slice(0, 50), joined, joinedEpoch, joinedSinces)
  await sleep(50)
  subscribeAll(joinedClients.slice(50), joined, joinedEpoch, joinedSinces, 50)
  await eventually(() => joinedClients.every((client) => client.frames.length >= 2), 30_000)
  t.equal(reads.count - before, 1, 'the second wave joined the first read')
  t.equal((await publish(gateway, { channel: joined, data: { n: 101 } })).status, 200)
  await eventually(() => joinedClients.every((client) => seqOf(client.frames.at(-1)?.offset) === 101), 30_000)
  await sleep(100)
  t.strictSame(wrongClients(joinedClients, joined, joinedEpoch, joinedSinces, 101), [], 'each: exactly its suffix, then the live message')

  // Not covered: the second wave resumes from before the first read's base, and live
  // messages are published while both reads are in flight.
  const later = 'room:later'
  await publishMany(gateway, later, 100)
  const { epoch: laterEpoch } = await gateway.app.engine.readHistory(later)
  const middle = reads.count
  const laterClients = clients.slice(100)
  const laterSinces = laterClients.map((_, index) => index < 50 ? 50 + index : index % 50)
  subscribeAll(laterClients.slice(0, 50), later, laterEpoch, laterSinces)
  await sleep(50)
  t.equal((await publish(gateway, { channel: later, data: { n: 101 } })).status, 200)
  subscribeAll(laterClients.slice(50), later, laterEpoch, laterSinces, 50)
  t.equal((await publish(gateway, { channel: later, data: { n: 102 } })).status, 200)
  await eventually(() => laterClients.every((client) => seqOf(client.frames.at(-1)?.offset) === 102), 30_000)
  await sleep(200)
  t.equal(reads.count - middle, 2, 'the older ones shared the next read')
  t.strictSame(wrongClients(laterClients, later, laterEpoch, laterSinces, 102), [],
    'each: exactly its suffix, then the live messages, once, in order')
  for (const client of clients) client.close()
})

await t.test('the embedded engine coalesces resumes the same way', async (t) => {
  const solo = await startGateway(t, { WS_MESSAGE_BURST: '1000' })
  t.equal(solo.app.engine.kind, 'memory')
  const channel = 'room:solo'
  await publishMany(solo, channel, 50)
  const { epoch } = await solo.app.engine.readHistory(channel)
  const clients = await connectMany(solo, 60, 'm')
  const sinces = clients.map((_, index) => index % 5 === 0 ? undefined : index % 51)
  const reads = countReads(solo.app)
  t.teardown(reads.stop)
  subscribeAll(clients, channel, epoch, sinces)
  t.equal((await publish(solo, { channel, data: { n: 51 } })).status, 200)
  await eventually(() => clients.every((client) => seqOf(client.frames.at(-1)?.offset) === 51), 30_000)
  await sleep(100)
  t.ok(reads.count <= 3, `${reads.count} history reads for 60 resumes`)
  t.strictSame(wrongClients(clients, channel, epoch, sinces, 51), [], 'every client: exactly its suffix, then the live message')
  for (const client of clients) client.close()
})

await t.test('plain subscribes of many channels share one position read per channel', async (t) => {
  const client = await connect(gateway, 'multi')
  await client.frame(0)
  const reads = countReads(gateway.app)
  t.teardown(reads.stop)
  const others = await Promise.all(Array.from({ length: 9 }, async (_, index) => await connect(gateway, `multi${index}`)))
  for (const other of others) await other.frame(0)
  const all = [client, ...others]
  for (const each of all) for (const name of ['x', 'y', 'z']) each.send({ type: 'subscribe', channel: `room:${name}`, id: name })
  for (const each of all) await each.frame(3)
  t.ok(reads.count <= 6, `${reads.count} reads for 30 subscribes of 3 channels`)
  for (const each of all) {
    t.strictSame(each.frames.slice(1).map((frame) => [frame.type, frame.id, frame.recovered]).sort(),
      [['subscribed', 'x', true], ['subscribed', 'y', true], ['subscribed', 'z', true]])
  }
  for (const each of all) each.close()
})
