import t from 'tap'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RedisServer, freePort } from '../helpers/redis-server.js'
import { statusOf } from '../helpers/gateway.js'
import { after } from '../helpers/async.js'
import { userToken } from '../helpers/tokens.js'
import { readyzShape } from '../helpers/readyz.js'
import { configMapData, dockerStages, exampleSecretData, execForm, readYaml, root, stageEnv } from './deploy-files.js'

/**
 * What Docker and a cluster would run, without either (issue 5 item 4): the runtime
 * stage's /app is rebuilt in a temporary directory — dist/, a production-only
 * `npm ci` as the Dockerfile runs it, package.json — and the Dockerfile's CMD is
 * started there with the image's ENV, the ConfigMap and the example Secret, Redis
 * being a redis-server this file starts. It must become ready, pass the compose
 * healthcheck, serve a ticket, and exit 0 on SIGTERM.
 */

// A production-only npm ci and, when dist/ is missing, a build: slow while other files run.
t.setTimeout(240_000)

const stages = dockerStages()
const runtime = stages.at(-1)!
const prodDeps = stages.find((stage) => stage.name === 'prod-deps')!

// npm runs without tap's process instrumentation (NODE_OPTIONS): it is not under test.
const npmEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'NODE_OPTIONS' && !name.startsWith('_TAPJS_')))

if (!existsSync(join(root, 'dist/server/main.js'))) {
  execFileSync('npm', ['run', 'build'], { cwd: root, env: npmEnv, timeout: 180_000, stdio: 'ignore' })
}

// The runtime stage's WORKDIR: exactly what its COPY instructions put there.
const app = mkdtempSync(join(tmpdir(), 'rtgw-image-'))
t.teardown(() => { rmSync(app, { recursive: true, force: true }) })
copyFileSync(join(root, 'package.json'), join(app, 'package.json'))
copyFileSync(join(root, 'package-lock.json'), join(app, 'package-lock.json'))
// The prod-deps stage's `npm ci ...` (not the `npm cache clean` after it, which would empty
// this machine's cache); --prefer-offline lets the local npm cache serve it.
const npmCi = prodDeps.instructions.find((instruction) => instruction.getKeyword() === 'RUN')!
  .getArguments().map((argument) => argument.getValue())
const ciArgs = npmCi.slice(0, npmCi.includes('&&') ? npmCi.indexOf('&&') : undefined)
if (ciArgs[0] !== 'npm' || ciArgs[1] !== 'ci' || !ciArgs.includes('--omit=dev')) throw new Error(`unexpected prod-deps RUN: ${ciArgs.join(' ')}`)
execFileSync('npm', [...ciArgs.slice(1), '--prefer-offline'], { cwd: app, env: npmEnv, timeout: 180_000, stdio: 'ignore' })
rmSync(join(app, 'package-lock.json'))
cpSync(join(root, 'dist'), join(app, 'dist'), { recursive: true })

const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })


/** Runs the compose healthcheck command (`CMD node -e ...`) with the container's PORT. */
async function composeHealthcheck (port: number): Promise<number> {
  const compose = readYaml('docker-compose.yml') as { services: { gateway: { healthcheck: { test: string[] } } } }
  const [form, command, ...args] = compose.services.gateway.healthcheck.test
  if (form !== 'CMD' || command !== 'node') throw new Error('unexpected healthcheck form')
  return await new Promise((resolve) => {
    execFile(process.execPath, args, { env: { PATH: process.env.PATH ?? '', PORT: String(port) }, timeout: 15_000 }, (error) => {
      resolve(error === null ? 0 : typeof error.code === 'number' ? error.code : -1)
    })
  })
}

void t.test('the image CMD with the image env, ConfigMap and example Secret: ready, healthy, exit 0 on SIGTERM', async (t) => {
  t.same(readdirSync(app).sort(), ['dist', 'node_modules', 'package.json'], 'the runtime stage layout')
  t.notOk(existsSync(join(app, 'node_modules/tap')), 'no dev dependency installed')

  const port = await freePort()
  const probePort = await freePort()
  const configMap = configMapData()
  const secret = exampleSecretData()
  // Precedence as in a pod: image ENV < envFrom ConfigMap < envFrom Secret. Only REDIS_URL
  // (this file's redis-server), PORT and PROBE_PORT (free ones) differ from the manifests.
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    ...stageEnv(stages, runtime),
    ...configMap,
    ...secret,
    REDIS_URL: redis.url,
    PORT: String(port),
    PROBE_PORT: String(probePort)
  }
  t.equal(env.NODE_ENV, 'production')

  const cmd = execForm(runtime.instructions.filter((instruction) => instruction.getKeyword() === 'CMD').at(-1)!)!
  t.same(cmd, ['node', 'dist/server/main.js'])
  const child = spawn(process.execPath, cmd.slice(1), { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  t.teardown(() => {
    // Whatever the outcome, leave nothing running (by pid, through the handle).
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const logs = (): Array<Record<string, unknown>> => stdout.split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)

  const baseUrl = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  while (await statusOf(`${baseUrl}/readyz`) !== 200) {
    if (child.exitCode !== null) throw new Error(`the gateway exited with ${child.exitCode} before ready: ${stderr}`)
    if (Date.now() > deadline) throw new Error(`not ready within 60 s: ${stderr}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  const ready = await fetch(`${baseUrl}/readyz`)
  const READY = { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } }
  t.same(readyzShape(await ready.json()), READY)
  t.equal(await statusOf(`${baseUrl}/livez`), 200)
  // What the kubelet asks: the probe thread of the built image.
  t.same(readyzShape(await (await fetch(`http://127.0.0.1:${probePort}/readyz`)).json()), READY)
  t.equal(await statusOf(`http://127.0.0.1:${probePort}/livez`), 200)
  const metrics = await (await fetch(`${baseUrl}/metrics`)).text()
  t.match(metrics, /^rtgw_connections_open 0$/m, 'the HPA metric is served on the main port')

  t.equal(await composeHealthcheck(port), 0, 'the compose healthcheck passes')
  t.equal(await composeHealthcheck(await freePort()), 1, 'and fails where nothing listens')

  // The Secret's JWT_SECRET is the one the gateway verifies with.
  const ticket = await fetch(`${baseUrl}/ws-ticket`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await userToken('alice', 's1', { secret: secret.JWT_SECRET! })}` }
  })
  t.equal(ticket.status, 200)
  const refused = await fetch(`${baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await userToken()}` } })
  t.equal(refused.status, 401, 'a token signed with another secret is refused')
  await refused.arrayBuffer()

  child.kill('SIGTERM')
  const bound = Number(env.SHUTDOWN_GRACE_MS) + 20_000
  const exit = await Promise.race([exited, after(bound, 'timeout' as const)])
  t.same(exit, { code: 0, signal: null }, `exit code 0 on SIGTERM (within ${bound} ms)`)

  const events = logs().map((line) => line.event)
  t.ok(events.includes('engine.redis.ready'), 'the Redis engine, not the embedded one')
  t.notOk(events.includes('engine.memory'))
  t.notOk(events.includes('auth.dev_secret'), 'no development secret in production')
  t.ok(events.includes('process.signal') && events.includes('process.closed'), 'the drain ran to its end')
  t.equal(stderr, '', 'nothing on stderr')
  t.same(readdirSync(app).sort(), ['dist', 'node_modules', 'package.json'], 'nothing written to the working directory (read-only root filesystem)')
})
