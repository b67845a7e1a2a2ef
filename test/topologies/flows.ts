/**
 * The cross-instance flows every Redis topology must carry (SPEC §4, §5), written
 * once and run by each topology's test file against two gateway instances that
 * share one Redis deployment.
 */
import type { Test } from 'tap'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { requestTicket, type Gateway } from '../helpers/gateway.js'
import { publish } from '../helpers/relay.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'

export async function tokenFor (sub: string, sessionId: string): Promise<string> {
  return await mintDevToken({ secret: TEST_SECRET, sub, sessionId, channels: ['chat:*'] })
}

/** An established session on `gateway`, terminated when `t` ends. */
export async function connect (t: Test, gateway: Gateway, sub = 'alice', sessionId = 's1'): Promise<TestClient> {
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await tokenFor(sub, sessionId))}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: sub, sessionId })
  return client
}

export function messagesOf (client: TestClient): Array<Record<string, unknown>> {
  return client.frames.filter((frame) => frame.type === 'message')
}

/** SPEC §4: a ticket from A opens one session on B, and only one of any concurrent presentations wins. */
export async function ticketOnceAcrossInstances (t: Test, a: Gateway, b: Gateway): Promise<void> {
  const ticket = await requestTicket(a, await tokenFor('alice', 'ticket-1'))
  const onB = new TestClient(`${b.wsUrl}?ticket=${ticket}`)
  t.teardown(() => { onB.socket.terminate() })
  t.match(await onB.frame(0), { type: 'session_established', userId: 'alice', sessionId: 'ticket-1' }, 'issued on A, consumed on B')
  for (const gateway of [a, b]) {
    const reused = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
    t.strictSame(await reused.frame(0), { type: 'error', code: 'WS_TICKET_INVALID' }, 'reused: refused')
    t.strictSame(await reused.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
  }
  onB.close()

  const raced = await requestTicket(a, await tokenFor('alice', 'ticket-2'))
  const clients = [a, b, a, b, a, b].map((gateway) => new TestClient(`${gateway.wsUrl}?ticket=${raced}`))
  t.teardown(() => { for (const client of clients) client.socket.terminate() })
  const firstFrames = await Promise.all(clients.map(async (client) => await client.frame(0)))
  t.equal(firstFrames.filter((frame) => frame.type === 'session_established').length, 1, 'of 6 concurrent upgrades on both instances, one session')
  const refused = clients.filter((_, index) => firstFrames[index]!.type !== 'session_established')
  t.equal(refused.length, 5)
  for (const client of refused) t.strictSame(await client.closed, { code: 4401, reason: 'WS_TICKET_INVALID' })
}

/** SPEC §5: a publish through A reaches a subscriber on B, exactly, for every channel given. */
export async function publishAcrossInstances (t: Test, a: Gateway, b: Gateway, channels: readonly string[]): Promise<void> {
  const client = await connect(t, b, 'alice', 'fanout')
  for (const [index, channel] of channels.entries()) {
    client.send({ type: 'subscribe', channel, id: `sub-${index}` })
    t.match(await client.frame(index + 1), { type: 'subscribed', channel, id: `sub-${index}`, recovered: true, offset: /^[A-Za-z0-9_-]+:0$/ })
  }
  const offsets: unknown[] = []
  for (const [index, channel] of channels.entries()) {
    const response = await publish(a, { channel, data: { text: 'hello', index } })
    t.equal(response.status, 200, `publish on ${channel}`)
    offsets.push(response.body.offset)
  }
  await client.frame(channels.length * 2)
  t.strictSame(messagesOf(client), channels.map((channel, index) => ({ type: 'message', channel, offset: offsets[index], data: { text: 'hello', index } })),
    'each message once, in order, with the offset the publish returned')
  client.close()
}

/** SPEC §5 resume: missed messages are replayed on the other instance, then live ones follow, no gap or duplicate. */
export async function resumeAcrossInstances (t: Test, a: Gateway, b: Gateway, channel: string): Promise<void> {
  const first = await connect(t, a, 'alice', 'resume-1')
  first.send({ type: 'subscribe', channel })
  await first.frame(1)
  for (let n = 0; n < 3; n += 1) t.equal((await publish(a, { channel, data: n })).status, 200)
  await first.frame(4)
  const lastOffset = messagesOf(first).at(-1)!.offset as string
  first.socket.terminate()
  for (let n = 3; n < 8; n += 1) t.equal((await publish(b, { channel, data: n })).status, 200)

  const second = await connect(t, b, 'alice', 'resume-2')
  second.send({ type: 'subscribe', channel, since: lastOffset, id: 'resume' })
  t.match(await second.frame(1), { type: 'subscribed', channel, id: 'resume', offset: lastOffset, recovered: true })
  await second.frame(6)
  t.equal((await publish(a, { channel, data: 8 })).status, 200)
  await second.frame(7)
  t.strictSame(messagesOf(second).map((message) => message.data), [3, 4, 5, 6, 7, 8], 'the 5 missed, then live; none twice')
  const seqs = messagesOf(second).map((message) => Number(String(message.offset).split(':')[1]))
  t.strictSame(seqs, [4, 5, 6, 7, 8, 9], 'offsets continue the seq without a gap')
  second.close()
}

/** SPEC §5 send: acked, and a retry of the same id from the same session (on the other instance) is acked but not appended. */
export async function sendAcked (t: Test, a: Gateway, b: Gateway, readInbound: () => Promise<Array<[string, string[]]>>): Promise<void> {
  const before = (await readInbound()).length
  const first = await connect(t, a, 'alice', 'upstream')
  const connectionId = first.frames[0]!.connectionId as string
  first.send({ type: 'send', id: 'm1', data: { text: 'to the backend' } })
  t.strictSame(await first.frame(1), { type: 'ack', id: 'm1' })
  const retry = await connect(t, b, 'alice', 'upstream')
  retry.send({ type: 'send', id: 'm1', data: { text: 'to the backend' } })
  t.strictSame(await retry.frame(1), { type: 'ack', id: 'm1' }, 'the retry on B is acked')
  const entries = await readInbound()
  t.equal(entries.length, before + 1, 'appended once')
  t.strictSame(entries.at(-1)![1], ['userId', 'alice', 'sessionId', 'upstream', 'connectionId', connectionId, 'id', 'm1', 'data', '{"text":"to the backend"}'])
  first.close()
  retry.close()
}
