/**
 * The presence contract (SPEC §11; src/server/engine/presence-types.ts): the per-user
 * registry and the limit, and join/leave exactly once per stay, decided by the engine.
 * engine.test.ts runs it on memory and Redis, cluster-engine.test.ts on a Cluster.
 * `makePeer`, when given, is a second instance on the same shared state.
 */
import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { EngineUnavailableError, type Engine } from '../../../src/server/engine/engine.js'
import type { PresenceTimings } from '../../../src/server/engine/presence-types.js'
import { rejectionOf, sleep } from '../../helpers/async.js'
import { eventually } from '../../helpers/gateway.js'

export interface PresenceUnderTest {
  readonly engine: Engine
  readonly makePeer?: () => Promise<Engine>
}

const timings: PresenceTimings = { ttlSeconds: 1, leaveDelayMs: 300 }
const connection = (instanceId = 'i1'): { connectionId: string, sessionId: string, connectedAt: number, instanceId: string } =>
  ({ connectionId: randomUUID(), sessionId: `s-${randomUUID().slice(0, 4)}`, connectedAt: Date.now(), instanceId })

export async function presenceContract (t: Test, name: string, makeEngine: () => Promise<PresenceUnderTest>): Promise<void> {
  await t.test(`${name} engine presence contract`, async (t) => {
    const setup = async (t: Test): Promise<PresenceUnderTest & { frames: string[], peer: Engine }> => {
      const underTest = await makeEngine()
      t.teardown(async () => { await underTest.engine.close() })
      const peer = underTest.makePeer === undefined ? underTest.engine : await underTest.makePeer()
      if (peer !== underTest.engine) t.teardown(async () => { await peer.close() })
      const frames: string[] = []
      underTest.engine.presence.onPresenceEvent((channel, frame) => { frames.push(`${channel} ${frame}`) })
      return { ...underTest, frames, peer }
    }

    await t.test('registerUserConnection admits exactly `limit` connections of a user, across instances', async (t) => {
      const { engine, peer } = await setup(t)
      const user = `u-${randomUUID()}`
      const first = connection('a')
      t.equal(await engine.presence.registerUserConnection(user, first, 3, 30), true)
      t.equal(await peer.presence.registerUserConnection(user, connection('b'), 3, 30), true)
      t.equal(await engine.presence.registerUserConnection(user, connection('a'), 3, 30), true)
      t.equal(await peer.presence.registerUserConnection(user, connection('b'), 3, 30), false, 'the fourth is refused')
      t.equal(await engine.presence.registerUserConnection(user, first, 3, 30), true, 'an already registered connection is not counted twice')
      t.equal(await engine.presence.registerUserConnection(`${user}-other`, connection(), 3, 30), true, 'other users are not affected')
      await engine.presence.unregisterUserConnection(user, first.connectionId)
      t.equal(await peer.presence.registerUserConnection(user, connection('b'), 3, 30), true, 'a slot freed by a close is usable')
      t.equal((await engine.presence.userConnections(user)).length, 3)
    })

    await t.test('userConnections lists every instance\'s connections with their details, oldest first', async (t) => {
      const { engine, peer } = await setup(t)
      const user = `u-${randomUUID()}`
      const a = { ...connection('a'), connectedAt: 1000 }
      const b = { ...connection('b'), connectedAt: 2000 }
      await peer.presence.registerUserConnection(user, b, 10, 30)
      await engine.presence.registerUserConnection(user, a, 10, 30)
      t.strictSame(await peer.presence.userConnections(user), [a, b])
      t.strictSame(await engine.presence.userConnections('nobody'), [])
    })

    await t.test('unrefreshed registry entries expire within the TTL and stop counting; refreshed ones stay', async (t) => {
      const { engine, peer } = await setup(t)
      const user = `u-${randomUUID()}`
      const kept = connection('a')
      const crashed = connection('b')
      await engine.presence.registerUserConnection(user, kept, 2, 1)
      await peer.presence.registerUserConnection(user, crashed, 2, 1)
      t.equal(await engine.presence.registerUserConnection(user, connection(), 2, 1), false)
      await sleep(600)
      await engine.presence.refreshUserConnections([{ userId: user, connectionId: kept.connectionId }], 1)
      await sleep(600)
      t.strictSame((await engine.presence.userConnections(user)).map((each) => each.connectionId), [kept.connectionId], 'the crashed instance\'s entry is gone')
      t.equal(await engine.presence.registerUserConnection(user, connection(), 2, 1), true, 'its slot is free again')
    })

    await t.test('join once per user, whatever the number of connections and instances; counts and info exact', async (t) => {
      const { engine, peer, frames } = await setup(t)
      const channel = `room-${randomUUID().slice(0, 8)}`
      await engine.listen(channel)
      const tabs = [randomUUID(), randomUUID(), randomUUID()]
      t.equal(await engine.presence.enterPresence(channel, { userId: 'alice', connectionId: tabs[0]!, info: '{"name":"Alice"}' }, timings), true, 'first tab: join')
      t.equal(await peer.presence.enterPresence(channel, { userId: 'alice', connectionId: tabs[1]!, info: '{"name":"Alice"}' }, timings), false)
      t.equal(await engine.presence.enterPresence(channel, { userId: 'alice', connectionId: tabs[2]!, info: '{"name":"Alice"}' }, timings), false)
      t.equal(await engine.presence.enterPresence(channel, { userId: 'alice', connectionId: tabs[2]!, info: '{"name":"Alice"}' }, timings), false, 'entering twice counts once')
      t.equal(await peer.presence.enterPresence(channel, { userId: 'bob', connectionId: randomUUID() }, timings), true)
      await eventually(() => frames.length === 2)
      await sleep(50)
      t.strictSame(frames.map((frame) => JSON.parse(frame.slice(channel.length + 1)) as unknown), [
        { type: 'join', channel, userId: 'alice', info: { name: 'Alice' } },
        { type: 'join', channel, userId: 'bob' }
      ])
      const snapshot = await peer.presence.readPresence(channel, 1000)
      t.strictSame({ ...snapshot, users: [...snapshot.users].sort((x, y) => x.userId.localeCompare(y.userId)) }, {
        users: [{ userId: 'alice', connections: 3, info: '{"name":"Alice"}' }, { userId: 'bob', connections: 1 }],
        totalUsers: 2,
        totalConnections: 4
      })
      t.strictSame(await engine.presence.readPresence('empty-room', 1000), { users: [], totalUsers: 0, totalConnections: 0 })
    })

    await t.test('leave once, after the delay, when the last connection left; a return inside the delay sends neither', async (t) => {
      const { engine, peer, frames } = await setup(t)
      const channel = `room-${randomUUID().slice(0, 8)}`
      await engine.listen(channel)
      const tab1 = { userId: 'carol', connectionId: randomUUID() }
      const tab2 = { userId: 'carol', connectionId: randomUUID() }
      await engine.presence.enterPresence(channel, tab1, timings)
      await peer.presence.enterPresence(channel, tab2, timings)
      await engine.presence.exitPresence(channel, tab1, timings)
      await peer.presence.exitPresence(channel, tab2, timings)
      t.strictSame((await engine.presence.readPresence(channel, 10)).totalUsers, 0, 'not counted while leaving')
      t.strictSame((await peer.presence.sweepPresence(timings, [channel])).flatMap((sweep) => sweep.left), [], 'not before the delay')
      t.equal(await peer.presence.enterPresence(channel, tab2, timings), false, 'back within the delay: no join')
      await peer.presence.exitPresence(channel, tab2, timings)
      await sleep(timings.leaveDelayMs + 50)
      const [one, two] = await Promise.all([engine.presence.sweepPresence(timings, [channel]), peer.presence.sweepPresence(timings, [channel])])
      t.strictSame([...one!, ...two!].flatMap((sweep) => sweep.left), ['carol'], 'exactly one sweeper wins the leave')
      t.strictSame((await engine.presence.sweepPresence(timings, [channel])).flatMap((sweep) => sweep.left), [], 'never twice')
      await eventually(() => frames.length === 2)
      await sleep(50)
      t.strictSame(frames.map((frame) => JSON.parse(frame.slice(channel.length + 1)) as unknown),
        [{ type: 'join', channel, userId: 'carol' }, { type: 'leave', channel, userId: 'carol' }])
    })

    await t.test('without a channel list, the sweep finds the due channels itself', async (t) => {
      const { engine, peer } = await setup(t)
      const channel = `room-${randomUUID().slice(0, 8)}`
      const tab = { userId: 'dave', connectionId: randomUUID() }
      await engine.presence.enterPresence(channel, tab, timings)
      await engine.presence.exitPresence(channel, tab, timings)
      await sleep(timings.leaveDelayMs + 50)
      const swept = await peer.presence.sweepPresence(timings)
      t.strictSame(swept.filter((sweep) => sweep.channel === channel).flatMap((sweep) => sweep.left), ['dave'])
    })

    await t.test('a crashed instance\'s entries expire within the TTL, then the user leaves; refreshed ones stay', async (t) => {
      const { engine, peer } = await setup(t)
      const channel = `room-${randomUUID().slice(0, 8)}`
      const crashed = { userId: 'erin', connectionId: randomUUID() }
      const alive = { userId: 'frank', connectionId: randomUUID() }
      await peer.presence.enterPresence(channel, crashed, timings)
      await engine.presence.enterPresence(channel, alive, timings)
      await sleep(600)
      await engine.presence.refreshPresence(channel, [alive], timings)
      await sleep(600)
      const swept = await engine.presence.sweepPresence(timings, [channel])
      t.strictSame(swept.flatMap((sweep) => sweep.expired), [crashed])
      t.strictSame(swept.flatMap((sweep) => sweep.left), ['erin'])
      t.strictSame(await engine.presence.readPresence(channel, 10), { users: [{ userId: 'frank', connections: 1 }], totalUsers: 1, totalConnections: 1 })
    })

    await t.test('a lapsed instance heartbeat is claimed exactly once with the connections it held; a retired one never', async (t) => {
      const { engine, peer } = await setup(t)
      const tag = randomUUID().slice(0, 8)
      const [crashed, alive, retired] = [`crashed-${tag}`, `alive-${tag}`, `retired-${tag}`]
      const self = `self-${tag}`
      for (const instance of [crashed, alive, retired, self]) t.equal(await engine.presence.heartbeatInstance(instance, 1), true, 'a first heartbeat: unknown before')
      t.equal(await engine.presence.heartbeatInstance(alive, 1), false, 'then known')
      const held = { ...connection(crashed), connectionId: `held-${tag}` }
      const closed = connection(crashed)
      await peer.presence.registerUserConnection('gina', held, 10, 1)
      await peer.presence.registerUserConnection('gina', closed, 10, 1)
      await peer.presence.unregisterUserConnection('gina', closed.connectionId, crashed)
      await engine.presence.registerUserConnection('hank', connection(alive), 10, 1)
      await engine.presence.registerUserConnection('ivan', connection(retired), 10, 1)
      await engine.presence.retireInstance(retired)
      t.strictSame(await engine.presence.claimLostInstances(), [], 'nothing lapsed yet')
      await sleep(600)
      await engine.presence.heartbeatInstance(alive, 1)
      await sleep(600)
      const claims = await Promise.all([engine.presence.claimLostInstances(self), peer.presence.claimLostInstances(self)])
      t.strictSame(claims.flat(), [{ userId: 'gina', connectionId: held.connectionId, sessionId: held.sessionId, instanceId: crashed }],
        'the crashed instance\'s open connection, to one claimer only; not the closed one, not the live or retired instances\'')
      t.strictSame(await engine.presence.claimLostInstances(self), [], 'claimed once; the caller\'s own lapsed heartbeat is never claimed by itself')
      t.equal(await engine.presence.heartbeatInstance(crashed, 1), true, 'a claimed instance that beats again learns it was taken for lost')
      for (const instance of [alive, crashed, self]) await engine.presence.retireInstance(instance)
    })

    await t.test('readPresence lists at most `limit` users; the totals stay exact', async (t) => {
      const { engine } = await setup(t)
      const channel = `room-${randomUUID().slice(0, 8)}`
      for (let n = 0; n < 5; n += 1) await engine.presence.enterPresence(channel, { userId: `user${n}`, connectionId: randomUUID() }, timings)
      const snapshot = await engine.presence.readPresence(channel, 2)
      t.equal(snapshot.users.length, 2)
      t.equal(snapshot.totalUsers, 5)
      t.equal(snapshot.totalConnections, 5)
    })

    await t.test('a closed engine refuses presence calls with EngineUnavailableError', async (t) => {
      const underTest = await makeEngine()
      await underTest.engine.close()
      t.ok(await rejectionOf(underTest.engine.presence.registerUserConnection('u', connection(), 1, 1)) instanceof EngineUnavailableError)
      t.ok(await rejectionOf(underTest.engine.presence.enterPresence('c', { userId: 'u', connectionId: 'x' }, timings)) instanceof EngineUnavailableError)
      t.ok(await rejectionOf(underTest.engine.presence.readPresence('c', 1)) instanceof EngineUnavailableError)
      t.ok(await rejectionOf(underTest.engine.presence.claimLostInstances()) instanceof EngineUnavailableError)
    })
  })
}
