/**
 * TLS for real: a private CA and a server certificate made with openssl, a
 * TLS-only redis-server (`rediss://` with URL credentials) and a TLS-only 3-master
 * Cluster (`REDIS_TLS=true`). The gateway runs as its own process (src/server/main.ts
 * through tsx) because the one way an operator trusts a private CA without code,
 * NODE_EXTRA_CA_CERTS, is read at process start. The child gets a clean environment,
 * so it reports no coverage of its own (see test/coverage-map.js).
 */
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { eventually } from '../helpers/gateway.js'
import { freePort } from '../helpers/redis-server.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { waitFor } from '../helpers/redis-sentinel.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { TestClient } from '../helpers/ws-client.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { DEFAULT_RELAY_SETTINGS } from '../../src/server/engine/memory-engine.js'
import { RedisEngine } from '../../src/server/engine/redis-engine.js'
import type { EngineLogger } from '../../src/server/engine/engine.js'
import { makeCertificates, type Certificates } from './certificates.js'
import { tokenFor } from './flows.js'

const silent: EngineLogger = { info () {}, warn () {}, error () {} }
const root = fileURLToPath(new URL('../../', import.meta.url))
const certificates = await makeCertificates(t.testdir())

async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  child.kill('SIGKILL')
  await once(child, 'exit')
}

/** A TLS-only redis-server (no plaintext port) requiring `password`, stopped by pid. */
async function startTlsRedis (t: Test, tls: Certificates, password: string): Promise<number> {
  const port = await freePort()
  const child = spawn('redis-server', [
    '--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--tls-auth-clients', 'no',
    '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-ca-cert-file', tls.ca,
    '--requirepass', password, '--save', '', '--appendonly', 'no', '--loglevel', 'warning'
  ], { stdio: 'ignore' })
  t.teardown(async () => { await stopProcess(child) })
  await waitFor(async () => await new Promise<boolean>((resolve) => {
    const cli = spawn('redis-cli', ['--tls', '--cacert', tls.ca, '-p', String(port), '-a', password, '--no-auth-warning', 'ping'], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    cli.stdout.on('data', (chunk: Buffer) => { out += chunk.toString() })
    cli.on('exit', () => { resolve(out.trim() === 'PONG') })
  }), 'TLS redis-server answering')
  return port
}

interface GatewayProcess { readonly baseUrl: string, readonly wsUrl: string }

/** `node --import tsx src/server/main.ts` with only `env` (plus PATH/HOME), ready when /readyz says so. */
async function startGatewayProcess (t: Test, env: Record<string, string>): Promise<GatewayProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? root, JWT_SECRET: TEST_SECRET, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString() })
  t.teardown(async () => { await stopProcess(child) })
  const baseUrl = `http://127.0.0.1:${port}`
  try {
    await eventually(async () => {
      if (child.exitCode !== null) return true
      return await fetch(`${baseUrl}/readyz`).then((response) => response.status === 200, () => false)
    }, 60_000)
  } catch (err) {
    throw new Error(`the gateway process did not become ready: ${(err as Error).message}\n${output}`)
  }
  if (child.exitCode !== null) throw new Error(`the gateway process exited ${child.exitCode}: ${output}`)
  return { baseUrl, wsUrl: `ws://127.0.0.1:${port}/ws` }
}

/** Tickets, a session, a channel round trip through the scripts and pub/sub, and an upstream send. */
async function flowsOverTls (t: Test, gateway: GatewayProcess): Promise<void> {
  const ready = await fetch(`${gateway.baseUrl}/readyz`)
  t.equal(ready.status, 200)
  t.match(await ready.json(), { status: 'ready', checks: { redis: { status: 'ok' }, pubsub: { status: 'ok' } } })

  const ticketResponse = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await tokenFor('alice', 'tls')}` } })
  t.equal(ticketResponse.status, 200)
  const { ticket } = await ticketResponse.json() as { ticket: string }
  const client = new TestClient(`${gateway.wsUrl}?ticket=${ticket}`)
  t.teardown(() => { client.socket.terminate() })
  t.match(await client.frame(0), { type: 'session_established', userId: 'alice', sessionId: 'tls' })

  client.send({ type: 'subscribe', channel: 'chat:tls', id: 's' })
  t.match(await client.frame(1), { type: 'subscribed', channel: 'chat:tls', id: 's', recovered: true })
  const published = await fetch(`${gateway.baseUrl}/v1/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await mintDevToken({ secret: TEST_SECRET, sub: 'backend', scope: 'gateway:publish' })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel: 'chat:tls', data: { over: 'tls' } })
  })
  t.equal(published.status, 200)
  const { offset } = await published.json() as { offset: string }
  t.strictSame(await client.frame(2), { type: 'message', channel: 'chat:tls', offset, data: { over: 'tls' } })

  client.send({ type: 'send', id: 'up-1', data: 1 })
  t.strictSame(await client.frame(3), { type: 'ack', id: 'up-1' })
  client.close()
}

await t.test('standalone: rediss:// with credentials in the URL, the CA trusted through NODE_EXTRA_CA_CERTS', async (t) => {
  const port = await startTlsRedis(t, certificates, 'tls-secret')
  const gateway = await startGatewayProcess(t, { REDIS_URL: `rediss://default:tls-secret@127.0.0.1:${port}`, NODE_EXTRA_CA_CERTS: certificates.ca })
  await flowsOverTls(t, gateway)
})

await t.test('the certificate is verified: without the CA (this test process) the engine refuses the server', async (t) => {
  const port = await startTlsRedis(t, certificates, 'tls-secret')
  // The connection's error reaches us as the engine's first `engine.redis.unreachable` line.
  const failures: Array<{ event?: unknown, reason?: unknown }> = []
  const logger: EngineLogger = { ...silent, error (obj) { failures.push(obj) } }
  const engine = new RedisEngine({ url: `rediss://default:tls-secret@127.0.0.1:${port}`, keyPrefix: 'tls:', commandTimeoutMs: 1000, logger, relay: DEFAULT_RELAY_SETTINGS })
  t.teardown(async () => { await engine.close() })
  await eventually(() => failures.length > 0)
  t.match(String(failures[0]?.reason), /self-signed certificate/, 'the TLS handshake fails on the untrusted chain')
  t.equal(engine.isReady(), false)
})

await t.test('cluster: REDIS_TLS=true against a TLS-only cluster (clients, bus and announced ports)', async (t) => {
  const cluster = await RedisCluster.start({ password: 'cluster-tls-secret', tls: certificates })
  t.teardown(async () => { await cluster.stop() })
  const gateway = await startGatewayProcess(t, {
    REDIS_CLUSTER_NODES: `127.0.0.1:${cluster.ports[0]!}`,
    REDIS_PASSWORD: 'cluster-tls-secret',
    REDIS_TLS: 'true',
    NODE_EXTRA_CA_CERTS: certificates.ca
  })
  await flowsOverTls(t, gateway)
})
