import t from 'tap'
import { readFileSync, readdirSync } from 'node:fs'
import WebSocket from 'ws'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { ensureBuilt } from '../helpers/build.js'
import { userToken } from '../helpers/tokens.js'
import type * as ClientSdk from '../../src/client/index.js'

// What an app gets from `npm install`: the built files behind package.json "exports".
// Imported by name at runtime only: the typecheck runs before anything is built.
ensureBuilt()
async function importPackage (specifier: string): Promise<typeof ClientSdk> {
  return await import(specifier) as typeof ClientSdk
}

const exportedNames = ['AuthenticationError', 'Backoff', 'ConnectionError', 'GatewayClientError', 'Poller', 'RealtimeClient', 'Subscriptions', 'TicketError', 'TicketManager']

await t.test('realtime-gateway/client resolves to ESM with type declarations', async (t) => {
  const sdk = await importPackage('realtime-gateway/client')
  t.same(Object.keys(sdk).sort(), exportedNames)
  const declarations = readFileSync(new URL('../../dist/client/index.d.ts', import.meta.url), 'utf8')
  t.match(declarations, /RealtimeClient/)
  t.match(declarations, /RealtimeClientOptions/)
})

await t.test('zero runtime dependencies: the built SDK imports only its own files', async (t) => {
  const dir = new URL('../../dist/client/', import.meta.url)
  const specifiers = readdirSync(dir).filter((file) => file.endsWith('.js')).flatMap((file) => {
    const source = readFileSync(new URL(file, dir), 'utf8')
    return [...source.matchAll(/(?:^|\n)(?:import|export)[^'"]*from\s+'([^']+)'/g)].map((match) => match[1]!)
  })
  t.ok(specifiers.length > 0)
  t.same(specifiers.filter((specifier) => !specifier.startsWith('./') && !specifier.startsWith('../protocol/')), [])
})

await t.test('the browser bundle is one self-contained ES module', async (t) => {
  const bundle = await importPackage('realtime-gateway/client/browser')
  t.same(Object.keys(bundle).sort(), exportedNames)
  const source = readFileSync(new URL('../../dist/browser/realtime-gateway.js', import.meta.url), 'utf8')
  t.notMatch(source, /\bimport\s*[({'"]|\brequire\(/, 'nothing left to load')
})

await t.test('Node 20 with ws injected: the packaged client connects', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(async () => { await redis.stop() })
  const gateway = await startGateway(t, { REDIS_URL: redis.url, SHUTDOWN_GRACE_MS: '200' })
  const { RealtimeClient } = await importPackage('realtime-gateway/client')
  const client = new RealtimeClient({ url: gateway.baseUrl, getToken: async () => await userToken(), WebSocket })
  t.teardown(() => { client.close() })
  await client.connect()
  t.equal(client.status, 'open')
})
