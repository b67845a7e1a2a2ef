import t from 'tap'
import { SubscribeRequests } from '../../packages/client/src/subscribe-requests.js'
import { GatewayClientError } from '../../packages/client/src/errors.js'
import { sleep } from '../helpers/async.js'

function harness (): { requests: SubscribeRequests, written: string[] } {
  const written: string[] = []
  let counter = 0
  const requests = new SubscribeRequests({
    nextRequestNumber: () => ++counter,
    frameOf: (channel) => ({ type: 'subscribe', channel }),
    write: (text) => { written.push(text) },
    random: () => 0
  })
  return { requests, written }
}

await t.test('a request is written with its id; its answer names the channel once', async (t) => {
  const { requests, written } = harness()
  requests.send('chat:a')
  t.same(written, ['{"type":"subscribe","channel":"chat:a","id":"sub-1"}'])
  t.equal(requests.answered('sub-1'), 'chat:a')
  t.equal(requests.answered('sub-1'), undefined)
  t.equal(requests.answered(undefined), undefined)
})

await t.test('waiters are settled by the confirmation or the refusal of their channel', async (t) => {
  const { requests } = harness()
  const a = requests.wait('a')
  const b = requests.wait('b')
  requests.confirm({ channel: 'a', offset: 'E1:0', recovered: true })
  t.same(await a, { channel: 'a', offset: 'E1:0', recovered: true })
  requests.refuse('b', new GatewayClientError('FORBIDDEN_CHANNEL', 'no'))
  await t.rejects(b, { code: 'FORBIDDEN_CHANNEL' })
})

await t.test('unsubscribe before confirmation: stale ids are cleared, waiters rejected', async (t) => {
  const { requests } = harness()
  const waiting = requests.wait('a')
  requests.send('a')
  requests.send('b')
  requests.forget('a', new GatewayClientError('UNSUBSCRIBED', 'gone'))
  await t.rejects(waiting, { code: 'UNSUBSCRIBED' })
  t.equal(requests.answered('sub-1'), undefined, 'a late answer to the old request settles nothing')
  t.equal(requests.answered('sub-2'), 'b')
})

await t.test('retryable refusals back off per channel from 250 ms (zero jitter) and reset when accepted', async (t) => {
  const { requests, written } = harness()
  t.equal(requests.retry('a', () => true), 250)
  t.equal(requests.retry('a', () => true), 500, 'a second refusal waits longer and replaces the retry due')
  t.equal(requests.retry('b', () => false), 250, 'counted per channel')
  t.equal(requests.retriesDue, 2, 'one retry due per channel')
  requests.accepted(undefined, 'a')
  t.equal(requests.retriesDue, 1, 'a confirmation cancels the retry due')
  t.equal(requests.retry('a', () => true), 250, 'the count starts again after a confirmation')
  await sleep(300)
  t.same(written.map((text) => (JSON.parse(text) as { channel: string }).channel), ['a'], 'sent again only while still wanted, once')
  t.equal(requests.retriesDue, 0)
})

await t.test('a new session, an unsubscribe or a stop cancel the retries due; the waiters of a new session stay', async (t) => {
  const { requests, written } = harness()
  const waiting = requests.wait('a')
  requests.retry('a', () => true)
  requests.retry('b', () => true)
  requests.clearInFlight()
  t.equal(requests.retriesDue, 0, 'the new session resubscribes every channel itself')
  requests.retry('b', () => true)
  requests.forget('b', new GatewayClientError('UNSUBSCRIBED', 'gone'))
  requests.retry('c', () => true)
  requests.refuseAll(new GatewayClientError('CLIENT_CLOSED', 'closed'))
  t.equal(requests.retriesDue, 0)
  await t.rejects(waiting, { code: 'CLIENT_CLOSED' }, 'the waiter of a was kept until the stop')
  await sleep(300)
  t.same(written, [], 'no retry went out')
})

await t.test('a new session clears the ids in flight; a stop rejects everyone', async (t) => {
  const { requests } = harness()
  requests.send('a')
  requests.clearInFlight()
  t.equal(requests.answered('sub-1'), undefined)
  const waiting = [requests.wait('a'), requests.wait('b')]
  requests.refuseAll(new GatewayClientError('CLIENT_CLOSED', 'closed'))
  for (const waiter of waiting) await t.rejects(waiter, { code: 'CLIENT_CLOSED' })
})
