import t from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { decodeJwt } from 'jose'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { loadConfig } from '../../src/server/config.js'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually } from '../helpers/gateway.js'
import { ensureBuilt, projectRoot } from '../helpers/build.js'

// Headless Debian Chromium driven by playwright-core (issue 4). `.ci/run` installs
// Chromium; without it this test is reported as skipped, with the reason, never passed.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const missing = existsSync(chromiumPath) ? undefined : `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`
const screenshotDir = `${projectRoot}test-results`

async function devGateway (t: { teardown: (fn: () => unknown) => void }, env: Record<string, string>): Promise<string> {
  // No JWT configuration: the gateway generates a development secret (SPEC §8) and serves the demo.
  const config = loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', SHUTDOWN_GRACE_MS: '200', ...env }, () => 'a-development-secret-of-thirty-two-characters')
  const app = await buildApp(config, { engine: configuredEngine(config) })
  app.server.keepAliveTimeout = 1000
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await app.close() })
  if (config.redis !== undefined) await eventually(() => app.engine.isReady())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return `http://127.0.0.1:${address.port}`
}

await t.test('the demo page connects, publishes to itself through /demo/publish and renders the message', { skip: missing }, async (t) => {
  ensureBuilt()
  const { chromium } = await import('playwright-core')
  const redis = await RedisServer.start()
  t.teardown(async () => { await redis.stop() })
  const baseUrl = await devGateway(t, { REDIS_URL: redis.url })

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage()
  const pageErrors: string[] = []
  page.on('pageerror', (error) => { pageErrors.push(error.message) })
  const requested: string[] = []
  page.on('request', (request) => { requested.push(`${request.method()} ${new URL(request.url()).pathname}`) })

  await page.goto(`${baseUrl}/demo`)
  await page.waitForSelector('#status[data-status="open"]', { timeout: 15_000 })
  t.equal(await page.textContent('#status'), 'open', 'the socket is open')
  const sub = await page.textContent('#user')
  t.match(sub, /^demo-[0-9a-f]{8}$/)
  t.equal(await page.textContent('#channel'), `user:${sub}`)
  // In the page: the SDK's own view, and the subscription confirmed before publishing.
  interface DemoWindow { demoClient: { getConnectionStatus: () => { connected: boolean, mode: string }, subscribe: (channel: string) => Promise<{ recovered: boolean }> } }
  const state = await page.evaluate(async (channel) => {
    const client = (globalThis as unknown as DemoWindow).demoClient
    const subscribed = await client.subscribe(channel)
    return { ...client.getConnectionStatus(), recovered: subscribed.recovered }
  }, `user:${sub}`)
  t.match(state, { connected: true, mode: 'websocket', recovered: true })
  await page.fill('#text', 'hello from headless chromium')
  const [published] = await Promise.all([
    page.waitForResponse((response) => new URL(response.url()).pathname === '/demo/publish', { timeout: 15_000 }),
    page.click('#send')
  ])
  t.equal(published.status(), 200, 'the page publishes through the demo route')
  t.match(await published.json(), { channel: `user:${sub}`, offset: /^[A-Za-z0-9_-]+:1$/ })
  await page.waitForSelector('#messages li', { timeout: 15_000 })
  const items = await page.$$eval('#messages li', (nodes) => nodes.map((node) => node.textContent))
  t.equal(items.length, 1)
  t.match(items[0], /^[A-Za-z0-9_-]+:1hello from headless chromium$/, 'rendered after its offset (the first message: seq 1)')

  mkdirSync(screenshotDir, { recursive: true })
  await page.screenshot({ path: `${screenshotDir}/demo.png`, fullPage: true })
  t.ok(existsSync(`${screenshotDir}/demo.png`), 'screenshot saved to test-results/demo.png')
  t.same(pageErrors, [], 'no uncaught error in the page')
  t.notOk(requested.some((request) => request.endsWith(' /v1/publish')), 'never the backend publish route')
})

await t.test('the demo exists only with the development secret', async (t) => {
  const dev = await devGateway(t, {})
  t.equal((await fetch(`${dev}/demo`)).status, 200)
  const token = await fetch(`${dev}/demo/token`, { method: 'POST' })
  t.equal(token.status, 200)
  const session = await token.json() as { token: string, sub: string, channel: string }
  t.match(session, { token: String, sub: /^demo-/, channel: /^user:demo-/ })
  t.equal(decodeJwt(session.token).scope, undefined, 'the demo token carries no scope')
  const backendPublish = await fetch(`${dev}/v1/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel: session.channel, data: 'x' })
  })
  t.equal(backendPublish.status, 403, 'so it cannot use the backend publish route')
  t.match(await backendPublish.json(), { code: 'INSUFFICIENT_SCOPE' })

  const config = loadConfig({ LOG_LEVEL: 'silent', JWT_SECRET: 'a-configured-secret-of-thirty-two-characters' })
  const app = await buildApp(config, { engine: configuredEngine(config) })
  t.teardown(async () => { await app.close() })
  t.equal((await app.inject({ method: 'GET', url: '/demo' })).statusCode, 404, 'a configured JWT secret: no demo')
  t.equal((await app.inject({ method: 'POST', url: '/demo/token' })).statusCode, 404, 'and no token minting')
  t.equal((await app.inject({ method: 'POST', url: '/demo/publish', payload: { data: 'x' } })).statusCode, 404, 'and no demo publishing')
  t.equal((await app.inject({ method: 'GET', url: '/demo/realtime-gateway.js' })).statusCode, 404)

  t.throws(() => loadConfig({ NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: '*' }, () => 'x'.repeat(32)), /JWT_SECRET or JWT_JWKS_URL is required/, 'production never runs on the development secret')
})
