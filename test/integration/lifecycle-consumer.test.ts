/**
 * examples/lifecycle-consumer.ts (SPEC §12) as a backend runs it: a child process with
 * tsx, reading `<prefix>events` of a real gateway through a consumer group. It prints
 * exactly the events of one client's session and acknowledges every one.
 */
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { requestTicket, startGateway } from '../helpers/gateway.js'
import { projectRoot } from '../helpers/build.js'
import { userToken } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'


/** An event without its `ts` (checked on its own: the clock's). */
const withoutTs = ({ ts, ...rest }: Record<string, string>): Record<string, string> => { void ts; return rest }
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

await t.test('the example prints each lifecycle event of a session, exactly, and acks it', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'ex:', LIFECYCLE_EVENTS: 'connect,subscribe,unsubscribe,disconnect' })
  const child = spawn(process.execPath, ['--import', 'tsx', 'examples/lifecycle-consumer.ts'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'ex:', GROUP: 'audit', CONSUMER: 'w1', MAX_EVENTS: '4' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const killer = setTimeout(() => { child.kill('SIGKILL') }, 60_000)
  t.teardown(() => { clearTimeout(killer); if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  const ready = new Promise<void>((resolve) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
      if (stderr.includes('lifecycle-consumer: ready')) resolve()
    })
  })
  const exited = once(child, 'exit')
  await Promise.race([ready, exited.then(() => { throw new Error(`the example exited early: ${stderr}`) })])

  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, await userToken('alice', 's1'))}`)
  t.teardown(() => { client.socket.terminate() })
  const established = await client.frame(0)
  client.send({ type: 'subscribe', channel: 'user:alice', id: 1 })
  t.match(await client.frame(1), { type: 'subscribed', id: 1 })
  client.send({ type: 'unsubscribe', channel: 'user:alice', id: 2 })
  t.match(await client.frame(2), { type: 'unsubscribed', id: 2 })
  client.socket.close(4001, 'done')
  await client.closed

  const [code] = await exited
  t.equal(code, 0, `the example stopped after MAX_EVENTS (stderr: ${stderr})`)
  const printed = stdout.trim().split('\n').map((line) => JSON.parse(line) as Record<string, string>)
  const who = { userId: 'alice', sessionId: 's1', connectionId: String(established.connectionId), instanceId: gateway.app.lifecycle.instanceId }
  t.strictSame(printed.map(withoutTs), [
    { event: 'connect', ...who },
    { event: 'subscribe', ...who, channel: 'user:alice' },
    { event: 'unsubscribe', ...who, channel: 'user:alice' },
    { event: 'disconnect', ...who, code: '4001', reason: 'done' }
  ])
  for (const event of printed) t.match(event.ts, /^\d{13}$/, 'ts in epoch ms')

  const admin = new Redis(redis.url)
  t.teardown(async () => { await admin.quit() })
  const [pending] = await admin.xpending('ex:events', 'audit') as [number]
  t.equal(pending, 0, 'every event acknowledged')
})
