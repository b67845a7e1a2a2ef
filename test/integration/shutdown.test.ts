import t, { type Test } from 'tap'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { eventually, requestTicket, startGateway, statusOf } from '../helpers/gateway.js'
import { after } from '../helpers/async.js'
import { TestClient, type ClosedEvent } from '../helpers/ws-client.js'
import { TEST_SECRET, userToken } from '../helpers/tokens.js'

/**
 * Graceful shutdown (SPEC §4, §7): the built process under `npm start` drains on
 * SIGTERM — readiness fails at once, every socket gets 1012 SERVER_RESTART spread
 * over time, and the process exits 0 within the grace budget.
 */

const root = fileURLToPath(new URL('../../', import.meta.url))
const GRACE_MS = 2000

// The build below can be slow while other test files load both cores.
t.setTimeout(240_000)

// Build once and fail here, clearly, if the project does not build. `npm start` then runs
// with --ignore-scripts, which skips only its prestart rebuild.
execFileSync('npm', ['run', 'build'], { cwd: root, timeout: 180_000, stdio: 'ignore' })

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

function childrenOf (pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)
  } catch {
    return [] // pgrep exits 1 when there are none
  }
}

function commandOf (pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ')
  } catch {
    return ''
  }
}

/** The gateway's node process somewhere below `npm start` (npm → sh → node). */
function gatewayPidUnder (pid: number): number | undefined {
  for (const child of childrenOf(pid)) {
    if (commandOf(child).includes('dist/server/main.js') && commandOf(child).startsWith('node')) return child
    const below = gatewayPidUnder(child)
    if (below !== undefined) return below
  }
  return undefined
}


interface NpmGateway {
  readonly npm: ChildProcess
  readonly gatewayPid: number
  readonly baseUrl: string
  readonly wsUrl: string
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>
  readonly logs: () => Array<Record<string, unknown>>
}

async function startNpm (t: Test): Promise<NpmGateway> {
  const port = await freePort()
  const npm = spawn('npm', ['start', '--ignore-scripts'], {
    cwd: root,
    detached: false,
    stdio: ['ignore', 'pipe', 'pipe'],
    // A clean environment (NODE_ENV unset): only what the gateway is given here.
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? t.testdir(),
      REDIS_URL: redis.url,
      PORT: String(port),
      HOST: '127.0.0.1',
      JWT_SECRET: TEST_SECRET,
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      LOG_LEVEL: 'info'
    }
  })
  let stdout = ''
  let stderr = ''
  npm.stdout?.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  npm.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null, at: number }>((resolve) => {
    npm.once('exit', (code, signal) => { resolve({ code, signal, at: Date.now() }) })
  })
  let gatewayPid: number | undefined
  t.teardown(() => {
    // Whatever the outcome, leave no process of ours behind (by pid only).
    if (gatewayPid !== undefined && isAlive(gatewayPid)) process.kill(gatewayPid, 'SIGKILL')
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL')
  })

  const baseUrl = `http://127.0.0.1:${port}`
  await eventually(async () => {
    if (npm.exitCode !== null) throw new Error(`npm start exited with ${npm.exitCode} before ready: ${stderr}`)
    gatewayPid ??= npm.pid === undefined ? undefined : gatewayPidUnder(npm.pid)
    return await statusOf(`${baseUrl}/readyz`) === 200
  }, 90_000)
  gatewayPid ??= npm.pid === undefined ? undefined : gatewayPidUnder(npm.pid)
  if (gatewayPid === undefined) throw new Error('no gateway process below npm start')

  const logs = (): Array<Record<string, unknown>> => stdout.split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
  return { npm, gatewayPid, baseUrl, wsUrl: `ws://127.0.0.1:${port}/ws`, exited, logs }
}

interface Session { client: TestClient, closedAt: Promise<number> }

async function openSessions (t: Test, gateway: NpmGateway, count: number): Promise<Session[]> {
  const sessions: Session[] = []
  for (let index = 0; index < count; index += 1) {
    const response = await fetch(`${gateway.baseUrl}/ws-ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await userToken(`user${index}`, `s${index}`)}` }
    })
    t.equal(response.status, 200)
    const { ticket } = await response.json() as { ticket: string }
    const client = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
    t.teardown(() => { client.socket.terminate() })
    const closedAt = new Promise<number>((resolve) => { client.socket.once('close', () => { resolve(Date.now()) }) })
    sessions.push({ client, closedAt })
  }
  for (const { client } of sessions) t.equal((await client.frame(0)).type, 'session_established')
  return sessions
}

void t.test('SIGTERM to npm start: readiness 503, 1012 spread over time, exit 0', async (t) => {
  const gateway = await startNpm(t)
  t.not(gateway.gatewayPid, gateway.npm.pid, 'npm runs the gateway as a child process')
  const sessions = await openSessions(t, gateway, 5)

  // What a process manager does when the command is `npm start`: the signal goes to npm,
  // which must reach the gateway (the script execs node; dash would otherwise keep it).
  const signalledAt = Date.now()
  gateway.npm.kill('SIGTERM')

  // Readiness fails at once: poll until it stops answering 200.
  let status: number | 'refused' = 200
  while (status === 200 && Date.now() - signalledAt < 1000) status = await statusOf(`${gateway.baseUrl}/readyz`)
  t.ok(status === 503 || status === 'refused', `readiness stops answering 200 within 1 s of the signal (got ${status})`)

  // Once the first socket is closed the process is draining and still listening: 503, naming the check.
  await Promise.race(sessions.map(async (session) => await session.closedAt))
  const response = await fetch(`${gateway.baseUrl}/readyz`)
  t.equal(response.status, 503)
  t.match(await response.json(), { status: 'not_ready', checks: { draining: { status: 'fail', reason: 'SIGTERM' } }, failing: ['draining'] })

  const budget = GRACE_MS + 3000
  const closes = await Promise.race([
    Promise.all(sessions.map(async (session) => await session.client.closed)),
    after<ClosedEvent[] | 'timeout'>(budget, 'timeout')
  ])
  t.same(closes, Array.from({ length: 5 }, () => ({ code: 1012, reason: 'SERVER_RESTART' })), 'every client gets 1012 SERVER_RESTART')
  const closedAt = await Promise.all(sessions.map(async (session) => await session.closedAt))
  const spread = Math.max(...closedAt) - Math.min(...closedAt)
  t.ok(spread > 100, `closes are spread over time (${spread} ms between first and last)`)
  t.ok(Math.max(...closedAt) - signalledAt < GRACE_MS, 'all within the grace budget')

  const exit = await Promise.race([gateway.exited, after(budget - (Date.now() - signalledAt), 'timeout' as const)])
  t.not(exit, 'timeout', `npm start exits within SHUTDOWN_GRACE_MS + 3000 ms`)
  if (exit !== 'timeout') {
    t.same({ code: exit.code, signal: exit.signal }, { code: 0, signal: null }, 'exit code 0')
    t.ok(exit.at - signalledAt < budget)
  }
  t.equal(isAlive(gateway.gatewayPid), false, 'the gateway process is gone')
  t.equal(await statusOf(`${gateway.baseUrl}/readyz`), 'refused')

  const events = gateway.logs().map((line) => line.event)
  t.ok(events.includes('process.signal'), 'logs the signal')
  t.match(gateway.logs().find((line) => line.event === 'ws.drain'), { connections: 5, spreadMs: GRACE_MS * 0.4 })
  t.ok(events.includes('process.closed'), 'logs the clean close')
})

void t.test('app.close() in process closes open sockets with 1012', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: '1000' })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway)}`)
  t.teardown(() => { client.socket.terminate() })
  t.equal((await client.frame(0)).type, 'session_established')
  const closing = gateway.app.close()
  t.same(await client.closed, { code: 1012, reason: 'SERVER_RESTART' })
  await closing
  t.equal(gateway.app.hub.size, 0)
})

void t.test('while draining: readiness 503, new upgrades get 1012 and keep their ticket for another instance', async (t) => {
  const draining = await startGateway(t, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: '1000' })
  const other = await startGateway(t, { REDIS_URL: redis.url })
  const ticket = await requestTicket(draining)
  await draining.app.drain()

  const readiness = await fetch(`${draining.baseUrl}/readyz`)
  t.equal(readiness.status, 503)
  t.match(readiness.headers.get('retry-after'), /^[1-3]$/, 'Retry-After 1 s plus jitter')
  t.match(await readiness.json(), { status: 'not_ready', checks: { redis: { status: 'ok' }, pubsub: { status: 'ok' }, draining: { status: 'fail' } }, failing: ['draining'] })

  const refused = new TestClient(`${draining.wsUrl}?ticket=${ticket}`)
  t.same(await refused.closed, { code: 1012, reason: 'SERVER_RESTART' })
  t.equal(refused.frames.length, 0, 'no session was established')

  const elsewhere = new TestClient(`${other.wsUrl}?ticket=${ticket}`)
  t.teardown(() => { elsewhere.socket.terminate() })
  t.match(await elsewhere.frame(0), { type: 'session_established', userId: 'alice' }, 'the ticket still works on another instance')
  elsewhere.close()
  await elsewhere.closed
  await eventually(() => other.app.hub.size === 0)
})

await t.test('a long-poll waiting at drain answers at once, and the instance closes without waiting for it', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: String(GRACE_MS) })
  const token = await userToken('poller', 'p1')
  const first = await fetch(`${gateway.baseUrl}/v1/poll?channel=user:poller`, { headers: { authorization: `Bearer ${token}` } })
  const { offset } = await first.json() as { offset: string }

  // Nothing will be published: without the drain this poll would be held for 30 s.
  const poll = fetch(`${gateway.baseUrl}/v1/poll?channel=user:poller&since=${offset}&timeoutMs=30000`, { headers: { authorization: `Bearer ${token}` } })
  await eventually(() => gateway.app.relay.channelCount === 1)
  const draining = gateway.app.drain()
  // A generous bound that only catches the poll being held for its whole timeout.
  const answer = await Promise.race([poll, after(10_000, 'held' as const)])
  if (answer === 'held') throw new Error('the poll was not released by the drain')
  t.equal(answer.status, 200)
  t.same(await answer.json(), { messages: [], offset, recovered: true }, 'answered with what it had')
  t.equal(answer.headers.get('connection'), 'close', 'the client reconnects elsewhere for its next poll')
  await draining
  await gateway.app.close()
  t.pass('closed without waiting for the poll timeout')
})
