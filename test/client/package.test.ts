import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import WebSocket from 'ws'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { ensureBuilt } from '../helpers/build.js'
import { userToken } from '../helpers/tokens.js'
import type * as ClientSdk from '../../packages/client/src/index.js'

// What an app gets from `npm install`: the built files behind package.json "exports".
// Imported by name at runtime only: the typecheck runs before anything is built.
ensureBuilt()
async function importPackage (specifier: string): Promise<typeof ClientSdk> {
  return await import(specifier) as typeof ClientSdk
}

const exportedNames = ['AuthenticationError', 'Backoff', 'ConnectionError', 'GatewayClientError', 'Poller', 'RealtimeClient', 'Subscriptions', 'TicketError', 'TicketManager']

await t.test('@realtime-gateway/client resolves to ESM with type declarations', async (t) => {
  const sdk = await importPackage('@realtime-gateway/client')
  t.same(Object.keys(sdk).sort(), exportedNames)
  const declarations = readFileSync(new URL('../../packages/client/dist/types/packages/client/src/index.d.ts', import.meta.url), 'utf8')
  t.match(declarations, /RealtimeClient/)
  t.match(declarations, /RealtimeClientOptions/)
})

await t.test('zero runtime dependencies: the built SDK is one module that imports nothing', async (t) => {
  const dir = new URL('../../packages/client/dist/', import.meta.url)
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.js'))) {
    const source = readFileSync(new URL(file, dir), 'utf8')
    t.notMatch(source, /\bimport\s*[({'"]|\bfrom\s*['"]|\brequire\(/, `${file}: nothing left to load`)
  }
  const manifest = JSON.parse(readFileSync(new URL('../../packages/client/package.json', import.meta.url), 'utf8')) as Record<string, unknown>
  t.equal(manifest.dependencies, undefined, 'no dependencies')
  t.equal(manifest.peerDependencies, undefined, 'no peer dependencies')
})

await t.test('the browser bundle is one self-contained ES module', async (t) => {
  const bundle = await importPackage('@realtime-gateway/client/browser')
  t.same(Object.keys(bundle).sort(), exportedNames)
  const source = readFileSync(new URL('../../packages/client/dist/realtime-gateway.min.js', import.meta.url), 'utf8')
  t.notMatch(source, /\bimport\s*[({'"]|\brequire\(/, 'nothing left to load')
})

await t.test('Node 20 with ws injected: the packaged client connects', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(async () => { await redis.stop() })
  const gateway = await startGateway(t, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: '200' })
  const { RealtimeClient } = await importPackage('@realtime-gateway/client')
  const client = new RealtimeClient({ url: gateway.baseUrl, getToken: async () => await userToken(), WebSocket })
  t.teardown(() => { client.close() })
  await client.connect()
  t.equal(client.status, 'open')
})
