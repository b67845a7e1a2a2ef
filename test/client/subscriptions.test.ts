import t from 'tap'
import { Subscriptions } from '../../packages/client/src/subscriptions.js'

function harness (): { subscriptions: Subscriptions, delivered: Array<[string, unknown, string]>, lost: string[] } {
  const delivered: Array<[string, unknown, string]> = []
  const lost: string[] = []
  const subscriptions = new Subscriptions({
    onMessage: (channel, data, offset) => { delivered.push([channel, data, offset]) },
    onRecoveryFailed: (channel) => { lost.push(channel) }
  })
  return { subscriptions, delivered, lost }
}

await t.test('remembers the last offset and resubscribes with since', async (t) => {
  const { subscriptions } = harness()
  subscriptions.add('chat:a')
  subscriptions.add('chat:b')
  t.same(subscriptions.subscribeFrames(), [{ type: 'subscribe', channel: 'chat:a' }, { type: 'subscribe', channel: 'chat:b' }])
  subscriptions.onSubscribed('chat:a', 'E1:0', true)
  subscriptions.onMessage('chat:a', 'E1:1', 'x')
  subscriptions.onMessage('chat:a', 'E1:2', 'y')
  t.same(subscriptions.subscribeFrames(), [{ type: 'subscribe', channel: 'chat:a', since: 'E1:2' }, { type: 'subscribe', channel: 'chat:b' }])
  subscriptions.remove('chat:b')
  t.same(subscriptions.channels, ['chat:a'])
})

await t.test('drops duplicates at the resume seam; a new epoch is accepted', async (t) => {
  const { subscriptions, delivered } = harness()
  subscriptions.add('c')
  subscriptions.onSubscribed('c', 'E1:0', true)
  for (const seq of [1, 2, 2, 1, 3]) subscriptions.onMessage('c', `E1:${seq}`, seq)
  subscriptions.onMessage('c', 'E2:1', 'new epoch')
  t.same(delivered.map(([, data]) => data), [1, 2, 3, 'new epoch'])
})

await t.test('recovered:false after a resume is surfaced; on a first subscribe it is not', async (t) => {
  const { subscriptions, lost } = harness()
  subscriptions.add('c')
  subscriptions.onSubscribed('c', 'E1:5', false)
  t.same(lost, [], 'first subscribe: nothing to recover')
  subscriptions.onMessage('c', 'E1:6', 1)
  subscriptions.onSubscribed('c', 'E2:0', false)
  t.same(lost, ['c'])
  t.same(subscriptions.subscribeFrames(), [{ type: 'subscribe', channel: 'c', since: 'E2:0' }])
})

await t.test('frames for channels not subscribed are ignored', async (t) => {
  const { subscriptions, delivered } = harness()
  subscriptions.onMessage('other', 'E1:1', 1)
  subscriptions.onSubscribed('other', 'E1:1', false)
  t.same(delivered, [])
  t.same(subscriptions.channels, [])
})

await t.test('poll answers: messages in order, duplicates dropped, the answer offset kept', async (t) => {
  const { subscriptions, delivered, lost } = harness()
  subscriptions.add('c')
  subscriptions.onPolled('c', [], 'E1:4', true)
  t.equal(subscriptions.offsetOf('c'), 'E1:4', 'a first poll only sets the position')
  subscriptions.onPolled('c', [{ offset: 'E1:4', data: 'seen' }, { offset: 'E1:5', data: 'a' }, { offset: 'E1:6', data: 'b' }], 'E1:6', true)
  t.same(delivered, [['c', 'a', 'E1:5'], ['c', 'b', 'E1:6']])
  t.equal(subscriptions.offsetOf('c'), 'E1:6')
  subscriptions.onPolled('c', [], 'E1:3', true)
  t.equal(subscriptions.offsetOf('c'), 'E1:6', 'an older answer never moves the position back')
  t.same(lost, [])
  subscriptions.onPolled('x', [{ offset: 'E1:1', data: 'nope' }], 'E1:1', true)
  t.equal(delivered.length, 2, 'channels not subscribed are ignored')
})

await t.test('poll answer with recovered:false: the app is told, and what is retained is delivered', async (t) => {
  const { subscriptions, delivered, lost } = harness()
  subscriptions.add('c')
  subscriptions.onPolled('c', [], 'E1:9', true)
  subscriptions.onPolled('c', [{ offset: 'E2:1', data: 'after the loss' }], 'E2:1', false)
  t.same(lost, ['c'])
  t.same(delivered, [['c', 'after the loss', 'E2:1']])
  t.equal(subscriptions.offsetOf('c'), 'E2:1')
})

await t.test('add with since: the first frame starts there; confirmed only by subscribed or a poll; an unknown since is no position', async (t) => {
  const { subscriptions, lost } = harness()
  subscriptions.add('a', 'E1:5')
  subscriptions.add('a', 'E1:9')
  subscriptions.add('b', 'not-an-offset')
  t.same(subscriptions.subscribeFrames(), [{ type: 'subscribe', channel: 'a', since: 'E1:5' }, { type: 'subscribe', channel: 'b' }], 'a channel kept keeps its position')
  t.notOk(subscriptions.isConfirmed('a'), 'a since is not a confirmation')
  subscriptions.onSubscribed('a', 'E1:7', true)
  t.ok(subscriptions.isConfirmed('a'))
  subscriptions.onPolled('b', [], 'E1:0', true)
  t.ok(subscriptions.isConfirmed('b'))
  subscriptions.remove('a')
  subscriptions.add('a')
  t.notOk(subscriptions.isConfirmed('a'), 'a removed channel starts over')
  t.same(lost, [])
})
