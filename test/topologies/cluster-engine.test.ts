/**
 * The engine and relay contracts (test/server/engine/contract.ts, relay-contract.ts) run
 * against RedisEngine on a real 3-master Redis Cluster, and the command observer.
 * Each contract subtest gets its own key prefix, so their keys spread over the
 * three masters like any deployment's.
 */
import t from 'tap'
import type { EngineLogger } from '../../src/server/engine/engine.js'
import { RedisEngine, type RedisEngineOptions } from '../../src/server/engine/redis-engine.js'
import { DEFAULT_RELAY_SETTINGS } from '../../src/server/engine/memory-engine.js'
import type { RedisTopology } from '../../src/server/engine/redis-topology.js'
import { eventually } from '../helpers/gateway.js'
import { RedisCluster } from '../helpers/redis-cluster.js'
import { engineContract } from '../server/engine/contract.js'
import { relayContract } from '../server/engine/relay-contract.js'
import { historyEventsContract } from '../server/engine/history-events-contract.js'
import { presenceContract } from '../server/engine/presence-contract.js'

const silent: EngineLogger = { info () {}, warn () {}, error () {} }

const cluster = await RedisCluster.start()
t.teardown(async () => { await cluster.stop() })
const topology: RedisTopology = { kind: 'cluster', nodes: cluster.ports.map((port) => ({ host: '127.0.0.1', port })), tls: false }

let engines = 0
async function clusterEngine (keyPrefix: string, options: Partial<RedisEngineOptions> = {}): Promise<RedisEngine> {
  const engine = new RedisEngine({ topology, keyPrefix, commandTimeoutMs: 1000, logger: silent, relay: DEFAULT_RELAY_SETTINGS, ...options } as RedisEngineOptions)
  await eventually(() => engine.isReady())
  return engine
}

await engineContract(t, 'redis cluster', async () => {
  const keyPrefix = `contract${++engines}:`
  return { engine: await clusterEngine(keyPrefix), inspectKeys: async () => await cluster.keys(`${keyPrefix}*`) }
})

await relayContract(t, 'redis cluster', async (relay) => {
  const keyPrefix = `relay${++engines}:`
  const start = async (): Promise<RedisEngine> => await clusterEngine(keyPrefix, { relay })
  return { engine: await start(), makePeer: start }
}, { multiInstance: true })

await t.test('onCommand sees every command with its name, a duration and its outcome', async (t) => {
  const seen: Array<[string, boolean]> = []
  const durations: number[] = []
  const engine = await clusterEngine('observed:', {
    onCommand: (command, durationMs, ok) => {
      seen.push([command, ok])
      durations.push(durationMs)
      // A throwing observer must not fail the command it observes.
      if (command === 'set') throw new Error('observer bug')
    }
  })
  t.teardown(async () => { await engine.close() })
  t.strictSame(seen, [['info', true]], 'the version check at connect')
  seen.length = 0

  const record = { sub: 'a', sessionId: 's', issuedAt: 1, expiresAt: 2, channels: [] }
  await engine.storeTicket('hash', record, 10)
  t.strictSame(await engine.consumeTicket('hash'), record)
  await engine.listen('room')
  await engine.publish('room', '{}')
  await engine.readHistory('room')
  await engine.appendInbound({ userId: 'u', sessionId: 's', connectionId: 'c', id: '1', data: '{}' })
  await engine.broadcastControl('{}')
  await engine.unlisten('room')
  t.strictSame(seen, [
    ['set', true], ['getdel', true], ['ssubscribe', true], ['script:publish', true], ['script:read-history', true],
    ['script:append-inbound', true], ['publish', true], ['sunsubscribe', true]
  ], 'one call per command, in order, sharded pub/sub on the cluster')
  t.ok(durations.every((duration) => Number.isFinite(duration) && duration >= 0), 'durations are milliseconds')

  // A paused node makes the next command on it time out: reported as not ok.
  const owner = await cluster.nodeOf('observed:ticket:paused')
  await cluster.onNode(owner, 'client', 'pause', '1500', 'all')
  seen.length = 0
  await t.rejects(engine.storeTicket('paused', record, 10), { name: 'EngineUnavailableError' })
  t.strictSame(seen, [['set', false]], 'the failed command is reported with ok=false')
})

await historyEventsContract(t, 'redis cluster', async (relay) => await clusterEngine(`events${++engines}:`, { relay }))

await presenceContract(t, 'redis cluster', async () => {
  const keyPrefix = `presence${++engines}:`
  const start = async (): Promise<RedisEngine> => await clusterEngine(keyPrefix)
  return { engine: await start(), makePeer: start }
})
