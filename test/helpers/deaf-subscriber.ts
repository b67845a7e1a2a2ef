/**
 * The deaf-subscriber scenario of SPEC §14, written once for every topology: a client
 * on `holder` is subscribed to `channel`, a backend keeps publishing through
 * `publisher`, and the proxy between `holder` and Redis makes only the connections
 * matching `pattern` deaf. Then: /readyz names `pubsub` within 2 × interval + timeout,
 * the instance heals by itself and is ready again, re-syncing from history what the
 * deaf period missed, and the client has every message published before, during and
 * after the deaf period exactly once, in order.
 */
import type { Test } from 'tap'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { eventually, requestTicket, type Gateway } from './gateway.js'
import { readyz } from './readyz.js'
import { publish } from './relay.js'
import type { TcpProxy } from './tcp-proxy.js'
import { TEST_SECRET } from './tokens.js'
import { TestClient } from './ws-client.js'

export interface DeafScenario {
  readonly publisher: Gateway
  readonly holder: Gateway
  /** Makes the holder's subscriber connection deaf (e.g. deafOnProxy) while the client is subscribed. */
  readonly makeDeaf: (t: Test) => Promise<void>
  /** Deaf connections still open (the heal must have given them up). */
  readonly deafLeft: () => Promise<number> | number
  readonly channel: string
  readonly intervalMs: number
  readonly timeoutMs: number
}

/** Deafens, on `proxy`, exactly the connection whose client bytes match `pattern`. */
export function deafOnProxy (proxy: TcpProxy, pattern: RegExp): Pick<DeafScenario, 'makeDeaf' | 'deafLeft'> {
  return {
    makeDeaf: async (t) => { t.equal(proxy.deafen(pattern), 1, 'exactly the subscriber connection is made deaf') },
    deafLeft: () => proxy.deafConnections
  }
}

export const PROBE_ENV = (intervalMs: number, timeoutMs: number): Record<string, string> => ({
  PUBSUB_PROBE_INTERVAL_MS: String(intervalMs), PUBSUB_PROBE_TIMEOUT_MS: String(timeoutMs), WS_MESSAGE_BURST: '1000'
})

const READY = { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } }

async function subscribe (t: Test, gateway: Gateway, channel: string): Promise<TestClient> {
  const token = await mintDevToken({ secret: TEST_SECRET, sub: 'alice', sessionId: 's1', channels: [`${channel.split(':')[0]!}:*`] })
  const client = new TestClient(`${gateway.wsUrl}?ticket=${await requestTicket(gateway, token)}`)
  t.teardown(() => { client.socket.terminate() })
  await client.frame(0)
  client.send({ type: 'subscribe', channel, id: 'sub' })
  t.match(await client.frame(1), { type: 'subscribed', id: 'sub', recovered: true })
  return client
}

/** A backend that publishes from, from + 1... every 20 ms until stopped; each number once (a non-200 fails the test). */
function backend (publisher: Gateway, channel: string, from = 0): { stop: () => Promise<number> } {
  let next = from
  let running = true
  const loop = (async () => {
    while (running) {
      const answer = await publish(publisher, { channel, data: next, idempotencyKey: `m${next}` })
      if (answer.status !== 200) throw new Error(`publish ${next}: ${answer.status}`)
      next += 1
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  })()
  return { stop: async () => { running = false; await loop; return next } }
}

function messagesOf (client: TestClient): unknown[] {
  return client.frames.filter((frame) => frame.type === 'message').map((frame) => frame.data)
}

async function metricValue (gateway: Gateway, name: string): Promise<number> {
  const text = await (await fetch(`${gateway.baseUrl}/metrics`)).text()
  return Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN)
}

export async function deafSubscriberHeals (t: Test, scenario: DeafScenario): Promise<void> {
  const { holder, channel, intervalMs, timeoutMs } = scenario
  const boundMs = 2 * intervalMs + timeoutMs
  const client = await subscribe(t, holder, channel)
  t.strictSame(await readyz(holder.baseUrl), { status: 200, body: READY })
  const healsBefore = await metricValue(holder, 'rtgw_pubsub_probe_heals_total')
  const publishing = backend(scenario.publisher, channel)
  await eventually(() => messagesOf(client).length >= 5)

  await scenario.makeDeaf(t)
  const deafAt = Date.now()
  let failed: Awaited<ReturnType<typeof readyz>> | undefined
  await eventually(async () => {
    const answer = await readyz(holder.baseUrl)
    if (answer.body.failing?.includes('pubsub') === true) failed = answer
    return failed !== undefined
  }, 10_000)
  const detectedMs = Date.now() - deafAt
  t.equal(failed?.status, 503)
  t.equal(failed?.body.checks.pubsub, 'fail: probe missed ×2', 'the reason names the misses')
  // SPEC §14's bound, plus the poll's own granularity (25 ms) and a loaded machine's slack.
  t.ok(detectedMs <= boundMs + 500, `pubsub failed ${detectedMs} ms after the subscriber went deaf (bound ${boundMs} ms)`)

  // Nothing is published from here until healed: what the deaf period missed can only
  // come from the heal's re-sync from history, not from a later live message's gap fill.
  const publishedWhileDeaf = await publishing.stop()
  await eventually(async () => (await readyz(holder.baseUrl)).status === 200, 15_000)
  t.strictSame((await readyz(holder.baseUrl)).body, READY, 'healed by itself')
  t.equal(await scenario.deafLeft(), 0, 'the deaf connection was given up')
  await eventually(() => messagesOf(client).length >= publishedWhileDeaf, 10_000)
  t.strictSame(messagesOf(client), Array.from({ length: publishedWhileDeaf }, (_, index) => index),
    `the heal re-synced from history: all ${publishedWhileDeaf} messages up to the heal, once each, in order`)

  const publishingAgain = backend(scenario.publisher, channel, publishedWhileDeaf)
  await eventually(() => messagesOf(client).length >= publishedWhileDeaf + 5, 10_000)
  const published = await publishingAgain.stop()
  await eventually(() => messagesOf(client).length >= published, 10_000)
  // Room for a late duplicate to show up.
  await new Promise((resolve) => setTimeout(resolve, 3 * intervalMs))
  t.strictSame(messagesOf(client), Array.from({ length: published }, (_, index) => index), `all ${published} messages, once each, in order`)
  const seqs = client.frames.filter((frame) => frame.type === 'message').map((frame) => Number(String(frame.offset).split(':')[1]))
  t.strictSame(seqs, Array.from({ length: published }, (_, index) => index + 1), 'offsets without a gap or a repeat')

  t.equal(await metricValue(holder, 'rtgw_pubsub_probe_heals_total') - healsBefore, 1, 'one heal')
  t.ok(await metricValue(holder, 'rtgw_pubsub_probe_misses_total') >= 2, 'the misses counted')
  t.ok(await metricValue(holder, 'rtgw_pubsub_probe_round_trip_seconds_count') >= 1, 'round trips observed')
  client.close()
}
