/**
 * The SDK side of SPEC §11 against a scripted gateway (the server side of presence is
 * built separately): `client.presence(channel)` answered by id, `join`/`leave` events,
 * a presence query asked again after a lost socket, and a 4429 TOO_MANY_CONNECTIONS
 * close: backed off like RATE_LIMITED, reported with its own code.
 */
import t from 'tap'
import { RealtimeClient } from '../../packages/client/src/realtime-client.js'
import type { GatewayClientError } from '../../packages/client/src/errors.js'
import type { CloseEventLike, MessageEventLike, WebSocketConstructor, WebSocketLike } from '../../packages/client/src/websocket.js'
import type { PresenceChange } from '../../packages/client/src/client-events.js'
import { sleep } from '../helpers/async.js'

type Frame = Record<string, unknown>

/** A socket whose server side is the test: `sent` is what the client wrote, `push` and `close` act as the gateway. */
class ScriptedSocket implements WebSocketLike {
  static readonly opened: ScriptedSocket[] = []
  readyState = 0
  onopen: ((event: unknown) => void) | null = null
  onmessage: ((event: MessageEventLike) => void) | null = null
  onclose: ((event: CloseEventLike) => void) | null = null
  onerror: ((event: unknown) => void) | null = null
  readonly sent: Frame[] = []

  constructor (readonly url: string) {
    ScriptedSocket.opened.push(this)
    setTimeout(() => {
      this.readyState = 1
      this.onopen?.({})
      this.push({ type: 'session_established', connectionId: `c${ScriptedSocket.opened.length}`, userId: 'alice', sessionId: 's1', heartbeatIntervalMs: 30_000, serverTime: new Date().toISOString() })
    }, 1)
  }

  send (data: string): void {
    this.sent.push(JSON.parse(data) as Frame)
  }

  push (frame: Frame): void {
    this.onmessage?.({ data: JSON.stringify(frame) })
  }

  close (code = 1000, reason = ''): void {
    if (this.readyState === 3) return
    this.readyState = 3
    this.onclose?.({ code, reason })
  }

  of (type: string): Frame[] {
    return this.sent.filter((frame) => frame.type === type)
  }
}

async function ticketFetch (): Promise<Response> {
  return new Response(JSON.stringify({ ticket: 'T', expiresAt: new Date(Date.now() + 30_000).toISOString() }), { status: 200, headers: { 'content-type': 'application/json' } })
}

function scriptedClient (t: { teardown: (fn: () => void) => void }): RealtimeClient {
  ScriptedSocket.opened.length = 0
  const client = new RealtimeClient({
    url: 'http://gateway.test',
    getToken: async () => 'jwt',
    fetch: ticketFetch,
    WebSocket: ScriptedSocket as unknown as WebSocketConstructor,
    page: null,
    backoff: { initialMs: 30, maxMs: 60 }
  })
  t.teardown(() => { client.close() })
  return client
}

const last = (): ScriptedSocket => {
  const socket = ScriptedSocket.opened.at(-1)
  if (socket === undefined) throw new Error('no socket')
  return socket
}

/** Waits for `check` to hold (a socket it reads may not exist yet). */
async function until (check: () => boolean): Promise<void> {
  const holds = (): boolean => { try { return check() } catch { return false } }
  for (let i = 0; i < 200 && !holds(); i++) await sleep(5)
  if (!holds()) throw new Error('timed out')
}

const answer = { users: [{ userId: 'alice', connections: 2, info: { name: 'Alice' } }, { userId: 'bob', connections: 1 }], totalUsers: 2, totalConnections: 3, truncated: false }

await t.test('presence(channel): one request by id, resolved with the answer', async (t) => {
  const client = scriptedClient(t)
  await client.connect()
  const pending = client.presence('room:1')
  const [request] = last().of('presence')
  t.match(request, { type: 'presence', channel: 'room:1' })
  t.type(request?.id, 'string')
  last().push({ type: 'presence', channel: 'room:1', id: request?.id, ...answer })
  t.strictSame(await pending, { channel: 'room:1', ...answer })
  t.equal(client.getConnectionStatus().pendingSends, 0)
})

await t.test('presence(channel) refused: rejects with the code of the gateway', async (t) => {
  const client = scriptedClient(t)
  await client.connect()
  const refused = client.presence('secret:1')
  last().push({ type: 'error', code: 'FORBIDDEN_CHANNEL', id: last().of('presence')[0]?.id })
  await t.rejects(refused, { code: 'FORBIDDEN_CHANNEL' })
})

await t.test('presence asked while connecting, and again on the next socket when the first is lost', async (t) => {
  const client = scriptedClient(t)
  void client.connect()
  const pending = client.presence('room:2')
  await until(() => last().of('presence').length === 1)
  const first = last()
  const id = first.of('presence')[0]?.id
  first.close(1006)
  await until(() => ScriptedSocket.opened.length === 2 && last().of('presence').length === 1)
  t.equal(last().of('presence')[0]?.id, id, 'the same request, same id')
  last().push({ type: 'presence', channel: 'room:2', id, ...answer })
  t.match(await pending, { channel: 'room:2', totalUsers: 2 })
})

await t.test('join and leave frames become join/leave events with channel, userId and info', async (t) => {
  const client = scriptedClient(t)
  const seen: Array<[string, PresenceChange]> = []
  client.on('join', (change) => { seen.push(['join', change]) })
  client.on('leave', (change) => { seen.push(['leave', change]) })
  await client.connect()
  last().push({ type: 'join', channel: 'room:1', userId: 'carol', info: { name: 'Carol' } })
  last().push({ type: 'join', channel: 'room:1', userId: 'dan' })
  last().push({ type: 'leave', channel: 'room:1', userId: 'carol' })
  t.strictSame(seen, [
    ['join', { channel: 'room:1', userId: 'carol', info: { name: 'Carol' } }],
    ['join', { channel: 'room:1', userId: 'dan' }],
    ['leave', { channel: 'room:1', userId: 'carol' }]
  ])
})

await t.test('4429 TOO_MANY_CONNECTIONS: reported with that code, backed off (never straight back), then reconnected', async (t) => {
  const client = scriptedClient(t)
  const errors: GatewayClientError[] = []
  client.on('error', (error) => { errors.push(error) })
  await client.connect()
  const closedAt = Date.now()
  last().close(4429, 'TOO_MANY_CONNECTIONS')
  await until(() => ScriptedSocket.opened.length === 2 && client.status === 'open')
  t.ok(Date.now() - closedAt >= 30, 'waited at least the initial backoff')
  t.equal(errors.length, 1)
  t.equal(errors[0]?.code, 'TOO_MANY_CONNECTIONS')
  t.equal(errors[0]?.status, 4429)
})
