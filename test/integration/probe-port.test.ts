import t from 'tap'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, startGateway } from '../helpers/gateway.js'
import { saturate } from '../helpers/stall.js'
import { loadConfig, ConfigError } from '../../src/server/config.js'
import { TEST_SECRET } from '../helpers/tokens.js'
import { readyzShape } from '../helpers/readyz.js'

/** PROBE_PORT: /livez and /readyz from a thread of their own, in milliseconds whatever the main loop does. */

const run = promisify(execFile)
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })

async function get (port: number, path: string): Promise<{ status: number, body: unknown, headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`)
  return { status: response.status, body: await response.json(), headers: response.headers }
}

void t.test('the probe port answers like the main port, and follows Redis and the drain', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, PROBE_PORT: '0' })
  const port = gateway.app.probePort()
  t.ok(port !== null && port > 0, `listening on ${String(port)}`)
  if (port === null) return

  const ready = await get(port, '/readyz')
  t.equal(ready.status, 200)
  t.strictSame(readyzShape(ready.body), { status: 'ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'ok' } })
  t.same(ready.body, await (await fetch(`${gateway.baseUrl}/readyz`)).json(), 'the same body as the main port')
  const live = await get(port, '/livez')
  t.same([live.status, live.body], [200, { status: 'ok' }])
  t.equal((await get(port, '/ws-ticket')).status, 404, 'nothing but probes on that port')

  await redis.kill()
  // First the reason is what closed the connection, then why reconnecting fails.
  await eventually(async () => readyzShape((await get(port, '/readyz')).body).checks.redis === 'fail: ECONNREFUSED')
  const down = await get(port, '/readyz')
  t.strictSame(readyzShape(down.body), { status: 'not_ready', checks: { redis: 'fail: ECONNREFUSED', pubsub: 'ok', draining: 'ok' }, failing: ['redis'] })
  t.match(down.headers.get('retry-after'), /^[1-3]$/, 'Retry-After 1 s plus jitter, as on the main port')
  await redis.start()
  await eventually(async () => (await get(port, '/readyz')).status === 200)

  await gateway.app.drain()
  await eventually(async () => (await get(port, '/readyz')).status === 503)
  t.strictSame(readyzShape((await get(port, '/readyz')).body), { status: 'not_ready', checks: { redis: 'ok', pubsub: 'ok', draining: 'fail: SIGTERM' }, failing: ['draining'] })
})

void t.test('with the main loop saturated, the probe port still answers in milliseconds', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url, PROBE_PORT: '0' })
  const port = gateway.app.probePort()
  if (port === null) throw new Error('no probe port')
  const stop = saturate()
  t.teardown(stop)
  // Timed from another process: this one's loop is the one being blocked. Both ports, in turn.
  const poller = `
    const mainPort = ${new URL(gateway.baseUrl).port}
    const latencies = { probe: [], main: [] }
    for (let i = 0; i < 20; i += 1) {
      for (const [name, port] of [['probe', ${port}], ['main', mainPort]]) {
        const started = performance.now()
        const response = await fetch('http://127.0.0.1:' + port + '/readyz')
        await response.text()
        if (response.status !== 200) throw new Error(name + ' status ' + response.status)
        latencies[name].push(performance.now() - started)
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    process.stdout.write(JSON.stringify(latencies))`
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', poller])
  stop()
  const latencies = JSON.parse(stdout) as { probe: number[], main: number[] }
  const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  t.equal(latencies.probe.length, 20, 'every probe answered 200')
  // Medians, not maxima: the machine may be busy with other test files; the contrast is what counts.
  const probe = median(latencies.probe)
  const main = median(latencies.main)
  t.ok(probe < 100, `probe port median ${probe.toFixed(1)} ms while the main loop was blocked 300 ms of every 320 ms`)
  t.ok(probe < main, `faster than the main port, which waits for the loop (median ${main.toFixed(1)} ms)`)
})

void t.test('PROBE_PORT must differ from PORT and METRICS_PORT', async (t) => {
  for (const env of [{ PORT: '8080', PROBE_PORT: '8080' }, { METRICS_PORT: '9464', PROBE_PORT: '9464' }]) {
    t.throws(() => loadConfig({ JWT_SECRET: TEST_SECRET, ...env }), new ConfigError('Invalid configuration: PROBE_PORT must differ from PORT and METRICS_PORT'))
  }
  t.equal(loadConfig({ JWT_SECRET: TEST_SECRET }).probePort, undefined, 'unset by default: probes on the main port only')
})
