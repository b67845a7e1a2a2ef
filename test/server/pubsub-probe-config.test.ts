import t from 'tap'
import { ConfigError, loadConfig } from '../../src/server/config.js'
import { TEST_SECRET } from '../helpers/tokens.js'

/** SPEC §2: PUBSUB_PROBE_INTERVAL_MS, PUBSUB_PROBE_TIMEOUT_MS (the delivery probe, §14). */
const base = { JWT_SECRET: TEST_SECRET }

void t.test('defaults: a probe every 5 s, 2 s to come back', async (t) => {
  t.strictSame(loadConfig(base).pubsubProbe, { intervalMs: 5000, timeoutMs: 2000 })
})

void t.test('set: taken as given', async (t) => {
  t.strictSame(loadConfig({ ...base, PUBSUB_PROBE_INTERVAL_MS: '200', PUBSUB_PROBE_TIMEOUT_MS: '200' }).pubsubProbe, { intervalMs: 200, timeoutMs: 200 })
})

void t.test('invalid: one line naming the variable', async (t) => {
  t.throws(() => loadConfig({ ...base, PUBSUB_PROBE_INTERVAL_MS: 'soon' }), { name: 'ConfigError', message: /PUBSUB_PROBE_INTERVAL_MS/ })
  t.throws(() => loadConfig({ ...base, PUBSUB_PROBE_INTERVAL_MS: '10' }), { name: 'ConfigError', message: /PUBSUB_PROBE_INTERVAL_MS/ })
  t.throws(() => loadConfig({ ...base, PUBSUB_PROBE_TIMEOUT_MS: '0' }), { name: 'ConfigError', message: /PUBSUB_PROBE_TIMEOUT_MS/ })
  t.throws(() => loadConfig({ ...base, PUBSUB_PROBE_INTERVAL_MS: '1000', PUBSUB_PROBE_TIMEOUT_MS: '2000' }),
    new ConfigError('Invalid configuration: PUBSUB_PROBE_TIMEOUT_MS must not exceed PUBSUB_PROBE_INTERVAL_MS'))
})
