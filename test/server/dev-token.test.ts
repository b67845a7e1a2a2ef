import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { statSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeJwt } from 'jose'
import { buildApp } from '../../src/server/app.js'
import { loadConfig } from '../../src/server/config.js'
import { readOrCreateDevSecret } from '../../src/server/dev/dev-secret.js'
import { TestClient } from '../helpers/ws-client.js'

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
async function devGateway (t: Test, secretFile: string): Promise<{ baseUrl: string, wsUrl: string }> {
  const env: NodeJS.ProcessEnv = { ...devEnv(secretFile), HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent' }
  const config = loadConfig(env, () => readOrCreateDevSecret(env.DEV_SECRET_FILE ?? '.dev-secret'))
  t.equal(config.jwt.devSecret, true, 'the gateway runs on the dev secret')
  const app = await buildApp(config)
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
