import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import WebSocket from 'ws'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, startGateway, statusOf } from '../helpers/gateway.js'
import { ensureBuilt, projectRoot } from '../helpers/build.js'
import { TEST_SECRET, userToken } from '../helpers/tokens.js'
import { publish } from '../helpers/relay.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { RealtimeClient, type ChannelMessage } from '../../packages/client/src/realtime-client.js'
import type { GatewayClientError } from '../../packages/client/src/errors.js'

// A rolling restart as Kubernetes does it: the load balancer stops sending new
// connections to the old pod, which then gets SIGTERM and closes its sockets with
// 1012. The old pod is the built gateway in its own process (its coverage is not
// collected, see test/coverage-map.js).
ensureBuilt()
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

await t.test('SIGTERM (1012): the client reconnects with a fresh ticket and resumes with nothing lost or duplicated', async (t) => {
  const port = await freePort()
  const old = spawn(process.execPath, ['dist/server/main.js'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', REDIS_URL: redis.url, JWT_SECRET: TEST_SECRET, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent', SHUTDOWN_GRACE_MS: '2000' },
    stdio: 'ignore'
  })
  t.teardown(() => { if (old.exitCode === null && old.signalCode === null) old.kill('SIGKILL') })
  await eventually(async () => await statusOf(`http://127.0.0.1:${port}/readyz`) === 200, 30_000)
  const replacement = await startGateway(t, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: '500' })
  const balancer = await TcpProxy.start(port)
  t.teardown(async () => { await balancer.close() })

  const socketUrls: string[] = []
  class Recorded extends WebSocket {
    constructor (url: string) {
      super(url)
      socketUrls.push(url)
    }
  }
  const client = new RealtimeClient({ url: balancer.url, getToken: async () => await userToken(), WebSocket: Recorded, page: null, backoff: { initialMs: 200, maxMs: 1000 } })
  t.teardown(() => { client.close() })
  const messages: ChannelMessage[] = []
  const errors: GatewayClientError[] = []
  client.on('message', (message) => { messages.push(message) })
  client.on('error', (error) => { errors.push(error) })
  await client.connect()
  await client.subscribe('user:alice')

  const exited = once(old, 'exit')
  for (let n = 0; n < 100; n += 1) {
    if (n === 30) {
      balancer.target = Number(new URL(replacement.baseUrl).port)
      old.kill('SIGTERM')
    }
    await publish(replacement, { channel: 'user:alice', data: n })
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const [exitCode] = await exited
  t.equal(exitCode, 0, 'the old instance drained and exited cleanly')

  await eventually(() => messages.length >= 100, 20_000)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.same(messages.map((message) => message.data), Array.from({ length: 100 }, (_, n) => n), 'every message once, in order')
  t.match(errors, [{ code: 'SERVER_RESTART', status: 1012 }], 'one 1012, and no other failure')
  t.equal(client.status, 'open')
  t.equal(socketUrls.length, 2)
  const tickets = socketUrls.map((url) => new URL(url).searchParams.get('ticket'))
  t.not(tickets[0], tickets[1], 'a fresh ticket for the reconnect')
})
