import t from 'tap'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'
import { userToken } from '../helpers/tokens.js'
import { disconnect } from '../helpers/relay.js'

/**
 * SPEC §3: with `revokeSeconds`, tickets are refused from the 200 on. The instance that
 * stored the ban must not wait for the ban's broadcast to come back over pub/sub: here
 * its subscriber is deaf (socket open, nothing delivered), so the broadcast never comes,
 * and the ticket asked for right after the 200 must still be refused.
 */
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const proxy = await TcpProxy.start(redis.port)
t.teardown(async () => { await proxy.close() })
// The probe would heal the deaf subscriber (and replay nothing of the control channel): keep it out of the way.
const gateway = await startGateway(t, { REDIS_URL: `redis://127.0.0.1:${proxy.port}`, PUBSUB_PROBE_INTERVAL_MS: '600000', PUBSUB_PROBE_TIMEOUT_MS: '600000' })

await t.test('the storing instance refuses the banned user\'s tickets at once', async (t) => {
  t.equal(proxy.deafen(/SUBSCRIBE/i), 1, 'the one subscriber connection is deaf')
  const ban = await disconnect(gateway, { userId: 'mallory', revokeSeconds: 60 })
  t.equal(ban.status, 200)
  const ticket = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await userToken('mallory', 'm1')}` } })
  t.equal(ticket.status, 401)
  t.match(await ticket.json(), { code: 'SESSION_REVOKED' })
  const other = await fetch(`${gateway.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${await userToken('trent', 't1')}` } })
  t.equal(other.status, 200, 'another user is not touched')
  await other.arrayBuffer()
})
