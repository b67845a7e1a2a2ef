/**
 * The gateway as a bench child process: src/server/app.ts buildApp with the
 * configuration loaded from the environment (bench/run.ts sets it), listening on
 * 127.0.0.1:<random>. Logs go to stdout, which run.ts points at /dev/null.
 */
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { loadConfig } from '../../src/server/config.js'
import { announce, serveParent } from './ipc.js'

const config = loadConfig({ ...process.env, HOST: '127.0.0.1', PORT: '0' })
const app = await buildApp(config, { engine: configuredEngine(config) })
await app.listen({ port: 0, host: '127.0.0.1' })

// The app listens before Redis is connected (by design): wait, bounded, for the engine.
const deadline = Date.now() + 10_000
while (!app.engine.isReady()) {
  if (Date.now() > deadline) throw new Error('engine not ready after 10 s')
  await new Promise((resolve) => setTimeout(resolve, 20))
}

const address = app.server.address()
if (address === null || typeof address === 'string') throw new Error('not listening')
serveParent(async () => { await app.close() })
// SIGTERM as in src/server/main.ts: drain (1012 to every socket), then close (bench/presence.ts rolling restart).
process.once('SIGTERM', () => {
  setTimeout(() => { process.exit(2) }, config.shutdownGraceMs + 1000).unref()
  app.drain().then(async () => { await app.close() }).then(() => { process.exit(0) }, () => { process.exit(1) })
})
announce(address.port)
