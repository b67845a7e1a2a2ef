/**
 * The process around the app: configuration, engine, listen, signals. Everything
 * else is in buildApp so tests run the same gateway without a process of its own.
 */
import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig } from './config.js'
import { buildApp } from './app.js'
import { configuredEngine } from './engine/create-engine.js'
import { readOrCreateDevSecret } from './dev/dev-secret.js'

let config
try {
  config = loadConfig(process.env, () => readOrCreateDevSecret(process.env.DEV_SECRET_FILE ?? '.dev-secret'))
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`${err.message}\n`)
  process.exit(1)
}

// The engine needs the app's logger, metrics and admission control: buildApp calls
// the factory once they exist, and closes the engine with the app.
const app = await buildApp(config, { engine: configuredEngine(config), processMetrics: true })

// SIGTERM/SIGINT: drain (readiness 503, 1012 to every socket), then close the app
// (listener, engine). Past the grace budget close-with-grace exits non-zero.
closeWithGrace({ delay: config.shutdownGraceMs + 1000 }, async ({ signal, err }) => {
  if (err !== undefined) app.log.error({ event: 'process.error', err }, 'fatal error; closing')
  else app.log.info({ event: 'process.signal', signal }, 'shutting down')
  await app.drain()
  await app.close()
  app.log.info({ event: 'process.closed' }, 'closed')
})

await app.listen({ port: config.port, host: config.host, backlog: config.listenBacklog })

if (config.jwt.devSecret) {
  app.log.warn({ event: 'auth.dev_secret', file: config.devSecretFile },
    'no JWT configuration: using a development secret. Mint a token with: npm run token -- --sub alice --session s1')
  app.log.info({ event: 'dev.demo', path: '/demo' }, `demo page: http://localhost:${config.port}/demo`)
}
