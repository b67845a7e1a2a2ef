import t from 'tap'
import { once } from 'node:events'
import { WebSocketServer } from 'ws'
import { Connection, type ConnectionLogger, type FrameHandler } from '../../../src/server/ws/connection.js'
import { ChannelAccess } from '../../../src/server/channels/channel-access.js'
import { TokenBucket } from '../../../src/server/ws/token-bucket.js'
import { parseClientFrame } from '../../../src/server/ws/protocol.js'
import { TestClient } from '../../helpers/ws-client.js'

void t.test('Connection contains failing frame handlers per connection', async (t) => {
  const logged: Array<{ level: string, obj: Record<string, unknown> }> = []
  const record = (level: string) => (obj: object): void => { logged.push({ level, obj: obj as Record<string, unknown> }) }
  const logger: ConnectionLogger = {
    level: 'debug',
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
    debug: record('debug'),
    child: () => logger
  }

  // ping ids pick the handler's behaviour; anything else is answered with a pong.
  const onFrame: FrameHandler = (connection, frame) => {
    if (frame.id === 'throw') throw new Error('sync failure')
    if (frame.id === 'reject' || frame.id === 7) return Promise.reject(new Error('async failure'))
    if (frame.id === 'reject-later') {
      return new Promise((_resolve, reject) => { setTimeout(() => { reject(new Error('late failure')) }, 20) })
    }
    connection.send(frame.id === undefined ? { type: 'pong' } : { type: 'pong', id: frame.id })
  }

  const connections: Connection[] = []
  const closedConnections: Connection[] = []
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(server, 'listening')
  t.teardown(async () => {
    for (const client of server.clients) client.terminate()
    await new Promise((resolve) => { server.close(resolve) })
  })
  server.on('connection', (socket) => {
    const index = connections.length
    connections.push(new Connection(socket, {
      identity: { connectionId: `c${index}`, userId: 'alice', sessionId: 's1' },
      access: new ChannelAccess({ userId: 'alice', sessionId: 's1', channelPatterns: [] }),
      logger,
      messageRate: { perSecond: 1000, burst: 1000 },
      onFrame,
      onClose: (connection) => { closedConnections.push(connection) }
    }))
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const url = `ws://127.0.0.1:${address.port}`

  const first = new TestClient(url)
  const second = new TestClient(url)
  t.teardown(() => { first.socket.terminate(); second.socket.terminate() })
  t.equal(await first.opened, true)
  t.equal(await second.opened, true)

  first.send({ type: 'ping', id: 'throw' })
  t.same(await first.frame(0), { type: 'error', code: 'INTERNAL_ERROR', id: 'throw' }, 'a throwing handler answers INTERNAL_ERROR with the id')
  first.send({ type: 'ping', id: 'reject' })
  t.same(await first.frame(1), { type: 'error', code: 'INTERNAL_ERROR', id: 'reject' }, 'a rejecting handler answers INTERNAL_ERROR with the id')
  first.send({ type: 'ping', id: 7 })
  t.same(await first.frame(2), { type: 'error', code: 'INTERNAL_ERROR', id: 7 }, 'numeric ids are echoed as numbers')
  first.send({ type: 'ping', id: 'reject-later' })
  first.send({ type: 'ping', id: 'after' })
  t.same(await first.frame(3), { type: 'pong', id: 'after' }, 'frames are not held up by a pending handler')
  t.same(await first.frame(4), { type: 'error', code: 'INTERNAL_ERROR', id: 'reject-later' })

  first.send({ type: 'ping', id: 'still-open' })
  t.same(await first.frame(5), { type: 'pong', id: 'still-open' }, 'the socket stays open and is served')
  t.equal(first.socket.readyState, first.socket.OPEN)

  second.send({ type: 'ping', id: 'bystander' })
  t.same(await second.frame(0), { type: 'pong', id: 'bystander' }, 'another connection is unaffected')
  t.equal(second.frames.length, 1, 'and saw none of the errors')

  const failures = logged.filter((entry) => entry.obj.event === 'ws.handler_failed')
  t.equal(failures.length, 4, 'each failure is logged once')
  t.same(failures.map((entry) => entry.level), ['error', 'error', 'error', 'error'])
  t.ok(failures.every((entry) => entry.obj.err instanceof Error && entry.obj.type === 'ping'))

  t.equal(connections.length, 2)
  t.equal(connections[0]?.isOpen, true)
  first.close()
  t.equal((await first.closed).code, 1005)
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(closedConnections, [connections[0]], 'onClose is called once for the closed connection')
  t.equal(connections[0]?.isOpen, false)
  t.equal(connections[1]?.isOpen, true)
  second.close()
  await second.closed
})

void t.test('Connection answers bad frames without calling the handler', async (t) => {
  let handled = 0
  const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await once(server, 'listening')
  t.teardown(async () => {
    for (const client of server.clients) client.terminate()
    await new Promise((resolve) => { server.close(resolve) })
  })
  const noop = (): void => {}
  const quiet: ConnectionLogger = { level: 'info', info: noop, warn: noop, error: noop, debug: noop, child: () => quiet }
  server.on('connection', (socket) => {
    new Connection(socket, {
      identity: { connectionId: 'c', userId: 'alice', sessionId: 's1' },
      access: new ChannelAccess({ userId: 'alice', sessionId: 's1', channelPatterns: [] }),
      logger: quiet,
      messageRate: { perSecond: 1, burst: 3 },
      onFrame: () => { handled += 1 },
      onClose: noop
    })
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  const client = new TestClient(`ws://127.0.0.1:${address.port}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal(await client.opened, true)
  client.send('{oops')
  t.same(await client.frame(0), { type: 'error', code: 'BAD_MESSAGE', message: 'invalid JSON' })
  client.send({ type: 'ping', id: 'ok' })
  client.send('[1]')
  t.same(await client.frame(1), { type: 'error', code: 'BAD_MESSAGE', message: 'frame must be a JSON object' })
  client.send({ type: 'ping' })
  t.same(await client.closed, { code: 4429, reason: 'RATE_LIMITED' }, 'the fourth frame within the burst of 3 closes with 4429')
  t.equal(handled, 1, 'only the valid frame reached the handler')
})

void t.test('TokenBucket', async (t) => {
  void t.test('allows the burst, then refuses', async (t) => {
    let now = 1_000_000
    const bucket = new TokenBucket({ perSecond: 2, burst: 3, now: () => now })
    t.same([bucket.take(), bucket.take(), bucket.take(), bucket.take()], [true, true, true, false])
    now += 100
    t.equal(bucket.take(), false, '0.2 tokens after 100 ms')
  })

  void t.test('refills at perSecond', async (t) => {
    let now = 0
    const bucket = new TokenBucket({ perSecond: 2, burst: 3, now: () => now })
    for (let index = 0; index < 3; index += 1) bucket.take()
    t.equal(bucket.take(), false)
    now += 400
    t.equal(bucket.take(), false, '0.8 tokens after 400 ms')
    now += 200
    t.equal(bucket.take(), true, '1.2 tokens after 600 ms')
    t.equal(bucket.take(), false, '0.2 left')
    now += 1000
    t.same([bucket.take(), bucket.take(), bucket.take()], [true, true, false], 'two more tokens after one more second')
  })

  void t.test('never holds more than its capacity', async (t) => {
    let now = 0
    const bucket = new TokenBucket({ perSecond: 50, burst: 4, now: () => now })
    now += 3_600_000
    const taken = Array.from({ length: 6 }, () => bucket.take())
    t.same(taken, [true, true, true, true, false, false], 'an idle hour still gives only the burst')
  })

  void t.test('defaults to the wall clock', async (t) => {
    const bucket = new TokenBucket({ perSecond: 1, burst: 1 })
    t.equal(bucket.take(), true)
    t.equal(bucket.take(), false)
  })
})

void t.test('parseClientFrame', async (t) => {
  t.strictSame(parseClientFrame('{"type":"ping"}'), { ok: true, frame: { type: 'ping' } })
  t.strictSame(parseClientFrame('{"type":"ping","id":"r1"}'), { ok: true, frame: { type: 'ping', id: 'r1' } })
  t.strictSame(parseClientFrame('{"type":"ping","id":42}'), { ok: true, frame: { type: 'ping', id: 42 } })
  t.strictSame(parseClientFrame('not json'), { ok: false, reason: 'invalid JSON' })
  t.strictSame(parseClientFrame(''), { ok: false, reason: 'invalid JSON' })
  t.strictSame(parseClientFrame('[{"type":"ping"}]'), { ok: false, reason: 'frame must be a JSON object' })
  t.strictSame(parseClientFrame('null'), { ok: false, reason: 'frame must be a JSON object' })
  t.strictSame(parseClientFrame('"ping"'), { ok: false, reason: 'frame must be a JSON object' })
  t.strictSame(parseClientFrame('{"type":"teleport","id":"r2"}'), { ok: false, id: 'r2', reason: 'unknown type "teleport"' })
  t.strictSame(parseClientFrame('{"type":"toString","id":3}'), { ok: false, id: 3, reason: 'unknown type "toString"' }, 'no prototype lookups')
  t.strictSame(parseClientFrame('{"id":"r3"}'), { ok: false, id: 'r3', reason: 'missing type' })
  t.strictSame(parseClientFrame('{"type":5}'), { ok: false, id: undefined, reason: 'missing type' })
  t.strictSame(parseClientFrame('{"type":"ping","id":{"nested":true}}'), { ok: false, id: undefined, reason: 'invalid ping frame' }, 'a bad id type is not echoed')
  t.strictSame(parseClientFrame('{"type":"ping","id":true}'), { ok: false, id: undefined, reason: 'invalid ping frame' })
  const long = parseClientFrame(JSON.stringify({ type: 'x'.repeat(100) }))
  t.equal(long.ok, false)
  t.equal(!long.ok && long.reason, `unknown type "${'x'.repeat(32)}"`, 'the echoed type is truncated')
})
