import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { statSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeJwt } from 'jose'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { loadConfig } from '../../src/server/config.js'
import { readOrCreateDevSecret } from '../../src/server/dev/dev-secret.js'
import { TestClient } from '../helpers/ws-client.js'
import { freePort } from '../helpers/redis-server.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'

/** SPEC §8: with no JWT configuration, `npm run token` mints tokens the gateway accepts. */

const root = fileURLToPath(new URL('../../', import.meta.url))

interface Run { code: number | null, stdout: string, stderr: string }

/** The environment of a developer's shell without any JWT configuration. */
const UNSET = new Set(['JWT_SECRET', 'JWT_JWKS_URL', 'JWT_ISSUER', 'JWT_AUDIENCE', 'JWT_SESSION_CLAIM', 'NODE_ENV', 'REDIS_URL'])
function devEnv (secretFile: string): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(([name]) => !UNSET.has(name))
  return { ...Object.fromEntries(inherited), DEV_SECRET_FILE: secretFile }
}

async function run (command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, 60_000)
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

async function tokenCli (secretFile: string, ...args: string[]): Promise<Run> {
  return await run(process.execPath, ['--import', 'tsx', 'src/server/dev/token-cli.ts', ...args], devEnv(secretFile))
}

/** A gateway configured the way main.ts does it, from the same environment. */
async function devGateway (t: Test, secretFile: string, extraEnv: Record<string, string> = {}): Promise<{ baseUrl: string, wsUrl: string }> {
  const env: NodeJS.ProcessEnv = { ...devEnv(secretFile), HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', ...extraEnv }
  const config = loadConfig(env, () => readOrCreateDevSecret(env.DEV_SECRET_FILE ?? '.dev-secret'))
  t.equal(config.jwt.devSecret, true, 'the gateway runs on the dev secret')
  const app = await buildApp(config, { engine: configuredEngine(config) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return { baseUrl: `http://127.0.0.1:${address.port}`, wsUrl: `ws://127.0.0.1:${address.port}${config.wsPath}` }
}

async function ticketStatus (baseUrl: string, token: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

void t.test('the CLI mints a token the gateway accepts; the secret file is private', async (t) => {
  const secretFile = join(t.testdir(), '.dev-secret')
  const minted = await tokenCli(secretFile, '--sub', 'alice', '--session', 's1')
  t.equal(minted.code, 0, minted.stderr)
  t.match(minted.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/, 'one JWT on one line')
  const token = minted.stdout.trim()
  t.match(decodeJwt(token), { sub: 'alice', sessionId: 's1', exp: Number, iat: Number })

  const stat = statSync(secretFile)
  t.equal(stat.mode & 0o777, 0o600, 'created with mode 0600')
  t.ok(readFileSync(secretFile, 'utf8').trim().length >= 32, 'a secret of at least 32 characters')

  const gateway = await devGateway(t, secretFile)
  const { status, body } = await ticketStatus(gateway.baseUrl, token)
  t.equal(status, 200)
  t.match(body, { ticket: /^[\w-]{43}$/, ttlSeconds: 30 })

  const client = new TestClient(`${gateway.wsUrl}?ticket=${body.ticket as string}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: 'alice', sessionId: 's1' })
  client.close()
  await client.closed

  const stranger = await tokenCli(join(t.testdir(), 'elsewhere'), '--sub', 'alice', '--session', 's1')
  t.equal(stranger.code, 0)
  t.equal((await ticketStatus(gateway.baseUrl, stranger.stdout.trim())).status, 401, 'a token signed with another dev secret is refused')
})

void t.test('the gateway creates the secret first; the CLI reuses it', async (t) => {
  const secretFile = join(t.testdir(), '.dev-secret')
  const gateway = await devGateway(t, secretFile)
  t.equal(statSync(secretFile).mode & 0o777, 0o600)
  const minted = await tokenCli(secretFile, '--sub', 'bob', '--session', 'tab-2', '--scope', 'gateway:publish', '--ttl', '5m')
  t.equal(minted.code, 0, minted.stderr)
  const claims = decodeJwt(minted.stdout.trim())
  t.match(claims, { sub: 'bob', sessionId: 'tab-2', scope: 'gateway:publish' })
  t.equal((claims.exp ?? 0) - (claims.iat ?? 0), 300, '--ttl sets the lifetime')
  t.equal((await ticketStatus(gateway.baseUrl, minted.stdout.trim())).status, 200)
})

void t.test('npm run token -- --sub alice --session s1 prints a token', async (t) => {
  const secretFile = join(t.testdir(), '.dev-secret')
  const minted = await run('npm', ['run', '--silent', 'token', '--', '--sub', 'alice', '--session', 's1'], devEnv(secretFile))
  t.equal(minted.code, 0, minted.stderr)
  t.match(minted.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
  t.match(decodeJwt(minted.stdout.trim()), { sub: 'alice', sessionId: 's1' })
  t.equal(statSync(secretFile).mode & 0o777, 0o600)
})

void t.test('missing --sub: usage on stderr, exit 1, no token, no secret file', async (t) => {
  const secretFile = join(t.testdir(), '.dev-secret')
  const result = await tokenCli(secretFile, '--session', 's1')
  t.equal(result.code, 1)
  t.equal(result.stdout, '')
  t.match(result.stderr, /^usage: npm run token -- --sub <user>/)
  t.equal(result.stderr.trim().split('\n').length, 1, 'one line, no stack trace')
  t.throws(() => statSync(secretFile), { code: 'ENOENT' })
})

interface DemoSession { token: string, sub: string, channel: string }
interface Answer { status: number, body: Record<string, unknown> }

async function demoSession (baseUrl: string): Promise<DemoSession> {
  const response = await fetch(`${baseUrl}/demo/token`, { method: 'POST' })
  if (response.status !== 200) throw new Error(`demo token: ${response.status}`)
  return await response.json() as DemoSession
}

async function post (url: string, token: string | undefined, body: unknown): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' }
  if (token !== undefined) headers.authorization = `Bearer ${token}`
  const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}

/** A WebSocket session of `session`'s user, subscribed to its own channel. */
async function subscriber (t: Test, gateway: { baseUrl: string, wsUrl: string }, session: DemoSession): Promise<TestClient> {
  const { status, body } = await ticketStatus(gateway.baseUrl, session.token)
  if (status !== 200) throw new Error(`ticket: ${status}`)
  const client = new TestClient(`${gateway.wsUrl}?ticket=${body.ticket as string}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: session.sub })
  client.send({ type: 'subscribe', channel: session.channel, id: 'own' })
  t.match(await client.frame(1), { type: 'subscribed', channel: session.channel, id: 'own' })
  return client
}

void t.test('a demo token is a plain user token: no scope, so /v1/publish refuses it', async (t) => {
  const gateway = await devGateway(t, join(t.testdir(), '.dev-secret'))
  const session = await demoSession(gateway.baseUrl)
  t.match(session, { sub: /^demo-[0-9a-f]{8}$/, channel: `user:${session.sub}` })
  const claims = decodeJwt(session.token)
  t.same(Object.keys(claims).sort(), ['exp', 'iat', 'sessionId', 'sub'], 'sub, session and lifetime only')
  t.equal(claims.scope, undefined, 'no scope claim')

  const published = await post(`${gateway.baseUrl}/v1/publish`, session.token, { channel: 'news:all', data: 'spoofed' })
  t.equal(published.status, 403)
  t.equal(published.body.code, 'INSUFFICIENT_SCOPE')
  const own = await post(`${gateway.baseUrl}/v1/publish`, session.token, { channel: session.channel, data: 'spoofed' })
  t.equal(own.status, 403, 'not even to its own channel')
  t.equal(own.body.code, 'INSUFFICIENT_SCOPE')
})

void t.test('POST /demo/publish delivers to the caller\'s own user:<sub> channel and nobody else\'s', async (t) => {
  const gateway = await devGateway(t, join(t.testdir(), '.dev-secret'))
  const alice = await demoSession(gateway.baseUrl)
  const bob = await demoSession(gateway.baseUrl)
  t.not(alice.sub, bob.sub, 'each demo token is a fresh user')
  const aliceClient = await subscriber(t, gateway, alice)
  const bobClient = await subscriber(t, gateway, bob)

  const published = await post(`${gateway.baseUrl}/demo/publish`, alice.token, { data: { text: 'hello me' } })
  t.equal(published.status, 200)
  t.match(published.body, { channel: alice.channel, offset: /^[\w-]+:1$/ })
  t.same(await aliceClient.frame(2), { type: 'message', channel: alice.channel, offset: published.body.offset, data: { text: 'hello me' } })

  // Bob's first message is his own: Alice's publish never reached his channel (and his never reaches hers).
  const bobs = await post(`${gateway.baseUrl}/demo/publish`, bob.token, { data: 'hello bob' })
  t.equal(bobs.status, 200)
  t.same(await bobClient.frame(2), { type: 'message', channel: bob.channel, offset: bobs.body.offset, data: 'hello bob' })
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(bobClient.frames.length, 3, 'bob got his own message only')
  t.equal(aliceClient.frames.length, 3, 'alice got her own message only')
})

void t.test('POST /demo/publish: 401 without or with a bad token, 400 for a misspelt or extra field, 413 over the frame limit', async (t) => {
  const gateway = await devGateway(t, join(t.testdir(), '.dev-secret'), { WS_MAX_PAYLOAD_BYTES: '1024' })
  const session = await demoSession(gateway.baseUrl)
  const url = `${gateway.baseUrl}/demo/publish`

  const anonymous = await post(url, undefined, { data: 'x' })
  t.equal(anonymous.status, 401)
  t.equal(anonymous.body.code, 'MISSING_TOKEN')
  const garbage = await post(url, 'not-a-jwt', { data: 'x' })
  t.equal(garbage.status, 401)
  t.equal(garbage.body.code, 'INVALID_TOKEN')
  const forged = await post(url, await mintDevToken({ secret: 'another-secret-of-at-least-thirty-two-chars', sub: session.sub, sessionId: 's1' }), { data: 'x' })
  t.equal(forged.status, 401, 'signed with another secret')
  t.equal(forged.body.code, 'INVALID_TOKEN')

  const misspelt = await post(url, session.token, { date: 'x' })
  t.equal(misspelt.status, 400)
  t.equal(misspelt.body.code, 'BAD_REQUEST')
  const otherChannel = await post(url, session.token, { data: 'x', channel: 'user:someone-else' })
  t.equal(otherChannel.status, 400, 'the body cannot name a channel')
  t.equal(otherChannel.body.code, 'BAD_REQUEST')

  const tooLarge = await post(url, session.token, { data: 'x'.repeat(1000) })
  t.equal(tooLarge.status, 413)
  t.equal(tooLarge.body.code, 'MESSAGE_TOO_LARGE_FOR_CLIENTS')
  const fits = await post(url, session.token, { data: 'x'.repeat(100) })
  t.equal(fits.status, 200, 'within the limit it is published')
  t.match(fits.body, { channel: session.channel, offset: /^[\w-]+:1$/ }, 'the refused ones published nothing')
})

void t.test('the demo routes are absent with a configured JWT_SECRET and under NODE_ENV=prod', async (t) => {
  const demoRequests = [
    { method: 'GET', url: '/demo' },
    { method: 'GET', url: '/demo/realtime-gateway.js' },
    { method: 'POST', url: '/demo/token' },
    { method: 'POST', url: '/demo/publish' }
  ] as const
  const secret = 'a-configured-secret-of-thirty-two-characters'
  const token = await mintDevToken({ secret, sub: 'alice', sessionId: 's1' })

  const configuredConfig = loadConfig({ LOG_LEVEL: 'silent', JWT_SECRET: secret })
  const configured = await buildApp(configuredConfig, { engine: configuredEngine(configuredConfig) })
  t.teardown(async () => { await configured.close() })
  for (const request of demoRequests) {
    const response = await configured.inject({ ...request, headers: { authorization: `Bearer ${token}` }, payload: request.method === 'POST' ? { data: 'x' } : undefined })
    t.equal(response.statusCode, 404, `JWT_SECRET set: ${request.method} ${request.url} is 404`)
  }

  t.throws(() => loadConfig({ NODE_ENV: 'prod', REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: '*' }, () => 'x'.repeat(32)),
    /JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=prod/, 'NODE_ENV=prod never runs on the development secret')
  // Nothing listens on the port: the routes are decided at build time, Redis is not needed.
  const prodConfig = loadConfig({ NODE_ENV: 'prod', LOG_LEVEL: 'silent', JWT_SECRET: secret, REDIS_URL: `redis://127.0.0.1:${await freePort()}`, ALLOWED_ORIGINS: '*' })
  const prod = await buildApp(prodConfig, { engine: configuredEngine(prodConfig) })
  t.teardown(async () => { await prod.close() })
  for (const request of demoRequests) {
    const response = await prod.inject({ ...request, headers: { authorization: `Bearer ${token}` }, payload: request.method === 'POST' ? { data: 'x' } : undefined })
    t.equal(response.statusCode, 404, `NODE_ENV=prod: ${request.method} ${request.url} is 404`)
  }
})
