import t, { type Test } from 'tap'
import type { ServerFrame } from '../../../src/protocol/frames.js'
import { ChannelAccess } from '../../../src/server/channels/channel-access.js'
import { ChannelRelay } from '../../../src/server/channels/channel-relay.js'
import type { ChannelSubscriber } from '../../../src/server/channels/channel-subscriber.js'
import { LongPoll } from '../../../src/server/channels/long-poll.js'
import { MemoryEngine } from '../../../src/server/engine/memory-engine.js'
import type { EngineLogger } from '../../../src/server/engine/engine.js'
import { eventually } from '../../helpers/gateway.js'

/**
 * The channel layer on its own (no socket, no Fastify): any object with an identity,
 * an access and a way to send is a subscriber, and the relay keeps its subscriptions.
 */

const quiet: EngineLogger = { info: () => {}, warn: () => {}, error: () => {} }

function subscriber (name: string, patterns: string[] = ['chat:*']): ChannelSubscriber & { readonly frames: unknown[] } {
  const frames: unknown[] = []
  return {
    frames,
    identity: { connectionId: `c-${name}`, userId: name, sessionId: `s-${name}` },
    access: new ChannelAccess({ userId: name, sessionId: `s-${name}`, channelPatterns: patterns }),
    send: (frame: ServerFrame) => { frames.push(frame) },
    sendText: (text: string) => { frames.push(JSON.parse(text)) }
  }
}

function setup (t: Test, maxChannelsPerConnection = 10): { engine: MemoryEngine, relay: ChannelRelay } {
  const engine = new MemoryEngine()
  t.teardown(async () => { await engine.close() })
  return { engine, relay: new ChannelRelay({ engine, logger: quiet, maxChannelsPerConnection }) }
}

await t.test('a plain subscriber is answered, receives live messages once, and leaves on remove', async (t) => {
  const { engine, relay } = setup(t)
  const alice = subscriber('alice')
  await relay.subscribe(alice, { type: 'subscribe', channel: 'chat:a', id: 1 })
  await eventually(() => alice.frames.length === 1)
  const { epoch } = await engine.readHistory('chat:a')
  await engine.publish('chat:a', '"hi"')
  await eventually(() => alice.frames.length === 2)
  t.strictSame(alice.frames, [
    { type: 'subscribed', channel: 'chat:a', id: 1, offset: `${epoch}:0`, recovered: true },
    { type: 'message', channel: 'chat:a', offset: `${epoch}:1`, data: 'hi' }
  ])
  t.equal(relay.channelCount, 1)
  relay.remove(alice)
  t.equal(relay.channelCount, 0, 'the channel is left with its last subscriber')
})

await t.test('a resume replays exactly the missed messages, then goes live', async (t) => {
  const { engine, relay } = setup(t)
  const first = await engine.publish('chat:r', '1')
  await engine.publish('chat:r', '2')
  await engine.publish('chat:r', '3')
  const bob = subscriber('bob')
  await relay.subscribe(bob, { type: 'subscribe', channel: 'chat:r', since: `${first.epoch}:1` })
  await engine.publish('chat:r', '4')
  await eventually(() => bob.frames.length === 4)
  t.strictSame(bob.frames.map((frame) => (frame as { offset: string }).offset), [1, 2, 3, 4].map((seq) => `${first.epoch}:${seq}`))
  t.match(bob.frames[0], { type: 'subscribed', recovered: true })
})

await t.test('forbidden channels and the per-subscriber cap are answered with their codes', async (t) => {
  const { relay } = setup(t, 1)
  const carol = subscriber('carol')
  await relay.subscribe(carol, { type: 'subscribe', channel: 'secret:x', id: 'f' })
  await relay.subscribe(carol, { type: 'subscribe', channel: 'chat:one', id: 'o' })
  await relay.subscribe(carol, { type: 'subscribe', channel: 'chat:two', id: 't' })
  await eventually(() => carol.frames.length === 3)
  t.match(carol.frames, [
    { type: 'error', code: 'FORBIDDEN_CHANNEL', id: 'f' },
    { type: 'subscribed', channel: 'chat:one', id: 'o' },
    { type: 'error', code: 'TOO_MANY_CHANNELS', id: 't' }
  ])
})

await t.test('LongPoll: waits for the next message, answers at once once released', async (t) => {
  const { engine, relay } = setup(t)
  const poll = new LongPoll({ engine, relay })
  const access = new ChannelAccess({ userId: 'dave', sessionId: 's', channelPatterns: ['chat:*'] })
  const { epoch } = await engine.readHistory('chat:p')
  const waiting = poll.poll(access, { channel: 'chat:p', since: `${epoch}:0`, timeoutMs: 10_000 }, new AbortController().signal)
  await eventually(() => relay.channelCount === 1)
  await engine.publish('chat:p', '"x"')
  t.strictSame(await waiting, { messages: [{ type: 'message', channel: 'chat:p', offset: `${epoch}:1`, data: 'x' }], offset: `${epoch}:1`, recovered: true })
  t.equal(relay.channelCount, 0, 'the poll\'s watch is closed')

  const started = Date.now()
  const released = poll.poll(access, { channel: 'chat:p', since: `${epoch}:1`, timeoutMs: 10_000 }, new AbortController().signal)
  await eventually(() => relay.channelCount === 1)
  poll.release()
  t.strictSame(await released, { messages: [], offset: `${epoch}:1`, recovered: true })
  t.ok(Date.now() - started < 5_000, 'not held for its timeout')
  await t.rejects(poll.poll(access, { channel: 'secret:p', timeoutMs: 0 }, new AbortController().signal), { code: 'FORBIDDEN_CHANNEL' })
})
