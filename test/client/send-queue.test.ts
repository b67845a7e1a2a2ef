import t from 'tap'
import { SendQueue } from '../../packages/client/src/send-queue.js'
import { GatewayClientError } from '../../packages/client/src/errors.js'
import { sleep } from '../helpers/async.js'

function harness (options: { maxPending?: number, maxPayloadBytes?: number } = {}): { queue: SendQueue, written: string[] } {
  const written: string[] = []
  let counter = 0
  const queue = new SendQueue({ clientId: 'c1', nextRequestNumber: () => ++counter, write: (text) => { written.push(text) }, retryDelayMs: 20, ...options })
  return { queue, written }
}

await t.test('a send is written with a client-unique id and resolves on its ack', async (t) => {
  const { queue, written } = harness()
  let acked = false
  const sent = queue.send({ n: 1 }, true).then((ack) => { acked = true; return ack })
  t.same(written, ['{"type":"send","id":"c1-1","data":{"n":1}}'])
  t.equal(queue.size, 1)
  await sleep(1)
  t.notOk(acked)
  queue.ack('c1-1')
  t.same(await sent, { id: 'c1-1' }, 'resolves to the ack: the id it went out with')
  t.equal(queue.size, 0)
})

await t.test('not open: kept, and written with the same id by resendAll', async (t) => {
  const { queue, written } = harness()
  const sent = queue.send('later', false)
  t.same(written, [])
  queue.resendAll()
  queue.resendAll()
  t.same(written, ['{"type":"send","id":"c1-1","data":"later"}', '{"type":"send","id":"c1-1","data":"later"}'])
  queue.ack('c1-1')
  await sent
})

await t.test('bounded: SEND_QUEUE_FULL without using an id; oversized and unserialisable data refused', async (t) => {
  const { queue } = harness({ maxPending: 1, maxPayloadBytes: 60 })
  const first = queue.send(1, true)
  await t.rejects(queue.send(2, true), { code: 'SEND_QUEUE_FULL' })
  queue.ack('c1-1')
  await first
  await t.rejects(queue.send('x'.repeat(100), true), { code: 'MESSAGE_TOO_LARGE' })
  await t.rejects(queue.send(10n, true), { code: 'BAD_MESSAGE' })
  t.equal(queue.size, 0)
})

await t.test('refused with a retryable code: written again after the delay; with another code: rejected', async (t) => {
  const { queue, written } = harness()
  const retried = queue.send('a', true)
  t.ok(queue.refuse('c1-1', new GatewayClientError('REDIS_NOT_READY', 'down')))
  await sleep(60)
  t.equal(written.length, 2, 'offered again')
  queue.ack('c1-1')
  await retried

  const refused = queue.send('b', true)
  t.ok(queue.refuse('c1-2', new GatewayClientError('BAD_MESSAGE', 'no')))
  await t.rejects(refused, { code: 'BAD_MESSAGE' })
  t.notOk(queue.refuse('c1-9', new GatewayClientError('BAD_MESSAGE', 'no')), 'not a pending send')
})

await t.test('a retry timer for a send acked meanwhile writes nothing; rejectAll fails every pending send', async (t) => {
  const { queue, written } = harness()
  const acked = queue.send('a', true)
  queue.refuse('c1-1', new GatewayClientError('OVERLOADED', 'busy'))
  queue.ack('c1-1')
  await acked
  await sleep(60)
  t.equal(written.length, 1)
  const pending = [queue.send('x', true), queue.send('y', true)]
  queue.rejectAll(new GatewayClientError('CLIENT_CLOSED', 'closed'))
  for (const send of pending) await t.rejects(send, { code: 'CLIENT_CLOSED' })
  t.equal(queue.size, 0)
})
