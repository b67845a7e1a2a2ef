/**
 * The delivery probe's miss/heal state machine (SPEC §14) without Redis: probes travel
 * to an echo server in a child process and back over TCP (so a returning probe is I/O,
 * read in the poll phase, as a Redis reply is), and the transport decides whether it
 * sends them at all.
 */
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { spawn } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { PubsubProbe, type PubsubProbeTransport } from '../../../src/server/engine/pubsub-probe.js'
import { busyFor } from '../../helpers/stall.js'
import { eventually } from '../../helpers/gateway.js'

const INTERVAL_MS = 100
const TIMEOUT_MS = 80
const silent = { info: (): void => {}, warn: (): void => {}, error: (): void => {} }

const ECHO_SERVER = "const s = require('net').createServer((c) => c.pipe(c)); s.listen(0, '127.0.0.1', () => console.log(s.address().port))"

/**
 * A socket to an echo server in a child process: what is written comes back as I/O,
 * from another event loop, so it can arrive while this one is blocked (as a Redis reply does).
 */
async function echoSocket (t: Test): Promise<Socket> {
  const child = spawn(process.execPath, ['-e', ECHO_SERVER], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  const socket = connect(Number(line.toString().trim()), '127.0.0.1')
  await once(socket, 'connect')
  t.teardown(() => { socket.destroy() })
  return socket
}

interface Harness {
  readonly probe: PubsubProbe
  deaf: boolean
  connected: boolean
  /** Runs right after each publish is written (the stall under test). */
  afterPublish: () => void
  readonly heals: string[]
  readonly counts: { roundTrips: number, misses: number, heals: number }
}

async function harness (t: Test): Promise<Harness> {
  const wire = await echoSocket(t)
  const counts = { roundTrips: 0, misses: 0, heals: 0 }
  const state: Omit<Harness, 'probe'> & { probe?: PubsubProbe } = { deaf: false, connected: true, afterPublish: () => {}, heals: [], counts }
  const transport: PubsubProbeTransport = {
    shards: () => ['probe:a'],
    subscribe: async () => {},
    publish: async (channel, payload) => {
      if (!state.deaf) wire.write(`${channel} ${payload}\n`)
      state.afterPublish()
    },
    heal: async (channel) => { state.heals.push(channel) }
  }
  const probe = new PubsubProbe({
    intervalMs: INTERVAL_MS,
    timeoutMs: TIMEOUT_MS,
    transport,
    isConnected: () => state.connected,
    logger: silent,
    observer: { roundTrip: () => { counts.roundTrips += 1 }, missed: () => { counts.misses += 1 }, healed: () => { counts.heals += 1 } }
  })
  let buffered = ''
  wire.on('data', (chunk: Buffer) => {
    buffered += chunk.toString()
    for (let newline = buffered.indexOf('\n'); newline !== -1; newline = buffered.indexOf('\n')) {
      const [channel, payload] = buffered.slice(0, newline).split(' ') as [string, string]
      buffered = buffered.slice(newline + 1)
      probe.received(channel, payload)
    }
  })
  t.teardown(() => { probe.close() })
  probe.start()
  return Object.assign(state, { probe }) as Harness
}

void t.test('a delivering subscriber: probes come back, the check stays ok', async (t) => {
  const h = await harness(t)
  await eventually(() => h.counts.roundTrips >= 5, 5000)
  t.equal(h.counts.misses, 0)
  t.match(h.probe.check(), { name: 'pubsub', ok: true })
  t.equal(h.probe.check().reason, undefined)
})

void t.test('two misses in a row fail the check and heal once; the next probe back passes it', async (t) => {
  const h = await harness(t)
  await eventually(() => h.counts.roundTrips >= 2, 5000)
  const okSince = h.probe.check().since
  h.deaf = true
  await eventually(() => !h.probe.check().ok, 5000)
  t.strictSame({ ...h.probe.check(), since: 0 }, { name: 'pubsub', ok: false, reason: 'probe missed ×2', since: 0 })
  t.ok(h.probe.check().since > okSince, 'since: when it started failing')
  t.strictSame(h.heals, ['probe:a'], 'the shard\'s subscriber is re-established once')
  t.equal(h.counts.misses, 2)

  h.deaf = false
  await eventually(() => h.probe.check().ok, 5000)
  t.equal(h.heals.length, 1, 'no second heal')
  t.equal(h.counts.heals, 1)
})

void t.test('still deaf after a heal: failing goes on, and every two more misses heal again', async (t) => {
  const h = await harness(t)
  h.deaf = true
  await eventually(() => h.heals.length >= 2, 5000)
  t.match(h.probe.check(), { ok: false, reason: /^probe missed ×(4|5)$/ })
})

void t.test('a stall longer than the timeout, with the probe already back in the socket, is no miss', async (t) => {
  const h = await harness(t)
  await eventually(() => h.counts.roundTrips >= 2, 5000)
  // Blocks the loop just after the publish: the echo arrives meanwhile but can only be read after the stall.
  let stalls = 0
  h.afterPublish = () => { if (stalls < 3) { stalls += 1; setImmediate(() => { busyFor(TIMEOUT_MS + 30) }) } }
  await eventually(() => stalls >= 3 && h.counts.roundTrips >= 6, 5000)
  h.afterPublish = () => {}
  // And one stall of several whole timeouts: the deadline fired late, so it is measured again.
  h.afterPublish = () => { h.afterPublish = () => {}; setImmediate(() => { busyFor(4 * TIMEOUT_MS) }) }
  const before = h.counts.roundTrips
  await eventually(() => h.counts.roundTrips >= before + 3, 5000)
  t.equal(h.counts.misses, 0, 'no miss counted for our own stalled loop')
  t.ok(h.probe.check().ok)
})

void t.test('while Redis is not connected nothing is sent or counted', async (t) => {
  const h = await harness(t)
  h.connected = false
  h.deaf = true
  await new Promise((resolve) => setTimeout(resolve, 5 * INTERVAL_MS))
  t.equal(h.counts.misses, 0)
  t.strictSame(h.heals, [])
  t.ok(h.probe.check().ok)
})

void t.test('a message on another channel is not the probe\'s', async (t) => {
  const h = await harness(t)
  await eventually(() => h.counts.roundTrips >= 1, 5000)
  t.equal(h.probe.received('rtgw:{ch:feed}:live', '1'), false)
  t.equal(h.probe.received('probe:a', 'not-a-number'), true, 'on a probe channel, always the probe\'s')
})
