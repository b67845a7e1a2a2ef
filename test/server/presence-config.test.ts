/** The presence variables (SPEC §2, §11): defaults, parsing, and one-line boot errors. */
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/server/config.js'
import { TEST_SECRET } from '../helpers/tokens.js'

const load = (env: Record<string, string> = {}): ReturnType<typeof loadConfig> => loadConfig({ JWT_SECRET: TEST_SECRET, ...env })

void t.test('defaults: no presence channel, 5000 ms delay, 30 s TTL, 100 connections per user', async (t) => {
  t.strictSame(load().presence, { channels: [], leaveDelayMs: 5000, ttlSeconds: 30, maxConnectionsPerUser: 100 })
  t.ok(Object.isFrozen(load().presence))
})

void t.test('values are parsed; the pattern list is trimmed', async (t) => {
  const config = load({ PRESENCE_CHANNELS: ' room:* , doc:**,lobby ', PRESENCE_LEAVE_DELAY_MS: '0', PRESENCE_TTL_SECONDS: '2', WS_MAX_CONNECTIONS_PER_USER: '3' })
  t.strictSame(config.presence, { channels: ['room:*', 'doc:**', 'lobby'], leaveDelayMs: 0, ttlSeconds: 2, maxConnectionsPerUser: 3 })
})

void t.test('invalid values are one-line ConfigErrors naming the variable', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PRESENCE_CHANNELS: 'room:**:x' }, /^Invalid configuration: PRESENCE_CHANNELS entry "room:\*\*:x" is not a channel pattern: "\*\*" is only allowed as the last segment$/],
    [{ PRESENCE_CHANNELS: 'room/{x}' }, /^Invalid configuration: PRESENCE_CHANNELS entry "room\/\{x\}" is not a channel pattern/],
    [{ PRESENCE_LEAVE_DELAY_MS: '-1' }, /^Invalid configuration: PRESENCE_LEAVE_DELAY_MS /],
    [{ PRESENCE_TTL_SECONDS: '0' }, /^Invalid configuration: PRESENCE_TTL_SECONDS /],
    [{ WS_MAX_CONNECTIONS_PER_USER: '0' }, /^Invalid configuration: WS_MAX_CONNECTIONS_PER_USER /],
    [{ WS_MAX_CONNECTIONS_PER_USER: 'many' }, /^Invalid configuration: WS_MAX_CONNECTIONS_PER_USER /]
  ]
  for (const [env, message] of cases) {
    let error: unknown
    try { load(env) } catch (err) { error = err }
    t.ok(error instanceof ConfigError, JSON.stringify(env))
    t.match((error as Error).message, message)
    t.notOk((error as Error).message.includes('\n'), 'one line')
  }
})
