import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, statusOf, type Gateway } from '../helpers/gateway.js'
import { TestClient } from '../helpers/ws-client.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { publish } from '../helpers/relay.js'

// A gateway in a child process (through tsx) that the test SIGKILLs. Its coverage is
// left out (test/coverage-map.js).
const root = fileURLToPath(new URL('../../', import.meta.url))
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

await t.test("a subscriber's instance is SIGKILLed: the client resumes on the other instance and misses nothing", async (t) => {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', REDIS_URL: redis.url, JWT_SECRET: TEST_SECRET, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'silent' },
    stdio: 'ignore'
  })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const doomed: Gateway = { app: undefined as never, config: undefined as never, baseUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}/ws` }
  await eventually(async () => await statusOf(`${doomed.baseUrl}/readyz`) === 200, 30_000)
  const survivor = await startGateway(t, { REDIS_URL: redis.url })

  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: ['orders:*'] })
  const first = new TestClient(`${doomed.wsUrl}?ticket=${await requestTicket(doomed, token)}`)
  await first.frame(0)
  first.send({ type: 'subscribe', channel: 'orders:42' })
  await first.frame(1)
  for (let n = 0; n < 5; n += 1) await publish(survivor, { channel: 'orders:42', data: n })
  await first.frame(6)
  const lastSeen = first.frames.at(-1)!.offset as string

  const exited = once(child, 'exit')
  child.kill('SIGKILL')
  const closed = await first.closed
  t.equal(closed.code, 1006, 'the socket died with the process')
  await exited
  for (let n = 5; n < 10; n += 1) await publish(survivor, { channel: 'orders:42', data: n })

  const second = new TestClient(`${survivor.wsUrl}?ticket=${await requestTicket(survivor, token)}`)
  t.teardown(() => { second.socket.terminate() })
  await second.frame(0)
  second.send({ type: 'subscribe', channel: 'orders:42', since: lastSeen })
  t.match(await second.frame(1), { type: 'subscribed', offset: lastSeen, recovered: true })
  await second.frame(6)
  await publish(survivor, { channel: 'orders:42', data: 10 })
  await second.frame(7)
  const before = first.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)
  const after = second.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)
  t.same([...before, ...after], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10], '0 lost, 0 duplicated across the instance death')
  second.close()
})
