import t from 'tap'
import { existsSync, mkdirSync } from 'node:fs'
import { decodeJwt } from 'jose'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { loadConfig } from '../../src/server/config.js'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually } from '../helpers/gateway.js'
import { ensureBuilt, projectRoot } from '../helpers/build.js'
import type { BrowserContext, Page } from 'playwright-core'

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

interface DemoWindow { demoClient: { getConnectionStatus: () => { connected: boolean, mode: string } } }

await t.test('the demo room: two users see each other, publish with from, resume across a reload exactly once, leave', { skip: missing }, async (t) => {
  ensureBuilt()
  const { chromium } = await import('playwright-core')
  const redis = await RedisServer.start()
  t.teardown(async () => { await redis.stop() })
  // A leave delay long enough that a reload inside it is no leave (SPEC §11), short enough to wait for.
  const baseUrl = await devGateway(t, { REDIS_URL: redis.url, PRESENCE_LEAVE_DELAY_MS: '1500' })

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  t.teardown(async () => { await browser.close() })
  const pageErrors: string[] = []
  /** One browser context per user: nothing shared between them but the gateway. */
  const open = async (user: string): Promise<{ page: Page, presenceRequests: () => number, context: BrowserContext }> => {
    const context = await browser.newContext()
    const page = await context.newPage()
    page.on('pageerror', (error) => { pageErrors.push(`${user}: ${error.message}`) })
    let presenceRequests = 0
    page.on('websocket', (socket) => {
      socket.on('framesent', (frame) => { if (typeof frame.payload === 'string' && frame.payload.includes('"type":"presence"')) presenceRequests += 1 })
    })
    await page.goto(`${baseUrl}/demo?user=${user}`)
    await page.waitForSelector('#status[data-status="open"]', { timeout: 15_000 })
    await page.waitForSelector(`#presence li[data-user="${user}"]`, { timeout: 15_000 })
    return { page, context, presenceRequests: () => presenceRequests }
  }
  const presentOn = async (page: Page): Promise<string[]> => await page.$$eval('#presence li', (items) => items.map((item) => item.getAttribute('data-user') ?? ''))
  const messagesOn = async (page: Page): Promise<Array<{ from: string, text: string }>> => await page.$$eval('#log li.message', (items) =>
    items.map((item) => ({ from: item.getAttribute('data-from') ?? '', text: item.textContent ?? '' })).reverse())
  const linesOn = async (page: Page, kind: 'join' | 'leave', user: string): Promise<number> => await page.$$eval(`#log li.${kind}[data-user="${user}"]`, (items) => items.length)

  const alice = await open('alice')
  t.equal(await alice.page.textContent('#user'), 'alice')
  t.equal(await alice.page.textContent('#room'), 'demo:room')
  t.match(await alice.page.evaluate(() => (globalThis as unknown as DemoWindow).demoClient.getConnectionStatus()), { connected: true, mode: 'websocket' })
  const bob = await open('bob')

  // Each sees both: bob from his snapshot, alice from bob's join (no refetch).
  await alice.page.waitForSelector('#presence li[data-user="bob"]', { timeout: 15_000 })
  await bob.page.waitForSelector('#presence li[data-user="alice"]', { timeout: 15_000 })
  t.strictSame(await presentOn(alice.page), ['alice', 'bob'])
  t.strictSame(await presentOn(bob.page), ['alice', 'bob'])
  t.equal(await linesOn(alice.page, 'join', 'bob'), 1, 'alice sees bob join once')

  // A client publish from alice reaches bob with the gateway's from.
  await alice.page.fill('#text', 'hello bob')
  await alice.page.click('#send')
  await bob.page.waitForSelector('#log li.message', { timeout: 15_000 })
  t.strictSame(await messagesOn(bob.page), [{ from: 'alice', text: await bob.page.$eval('#log li.message code', (node) => node.textContent ?? '') + 'alice: hello bob' }])
  await alice.page.waitForSelector('#log li.message')
  t.match((await messagesOn(alice.page))[0], { from: 'alice' }, 'alice sees her own message too')

  // Bob goes away (same tab, so the same sessionStorage); alice publishes twice meanwhile; bob comes back.
  await bob.page.goto('about:blank')
  for (const text of ['while you were away 1', 'while you were away 2']) {
    await alice.page.fill('#text', text)
    await alice.page.click('#send')
  }
  await eventually(async () => (await messagesOn(alice.page)).length === 3)
  await bob.page.goto(`${baseUrl}/demo`)
  await bob.page.waitForSelector('#resume[data-resumed="true"]', { timeout: 15_000 })
  t.equal(await bob.page.textContent('#user'), 'bob', 'the tab is still bob without ?user=')
  await eventually(async () => (await messagesOn(bob.page)).length >= 2)
  await new Promise((resolve) => setTimeout(resolve, 300))
  const replayed = await messagesOn(bob.page)
  t.strictSame(replayed.map((message) => [message.from, message.text.replace(/^\S+?:\d+/, '')]), [
    ['alice', 'alice: while you were away 1'],
    ['alice', 'alice: while you were away 2']
  ], 'exactly the two published meanwhile, once each, in order; not the one seen before')
  t.match(replayed[0]?.text, /^[A-Za-z0-9_-]+:2alice/, 'resumed after offset 1')
  t.strictSame(await presentOn(bob.page), ['alice', 'bob'])

  // Bob leaves for good: alice's list drops him after the leave delay.
  const leavesBefore = await linesOn(alice.page, 'leave', 'bob')
  await bob.context.close()
  await alice.page.waitForSelector(`#log li.leave[data-user="bob"]:nth-of-type(1)`, { timeout: 15_000 })
  await eventually(async () => (await presentOn(alice.page)).length === 1, 15_000)
  t.strictSame(await presentOn(alice.page), ['alice'], 'bob left the list')
  t.equal(await linesOn(alice.page, 'leave', 'bob'), leavesBefore + 1, 'one leave line for it')
  t.equal(alice.presenceRequests(), 1, 'alice read presence once (at subscribe); every change came from join/leave')

  mkdirSync(screenshotDir, { recursive: true })
  await alice.page.screenshot({ path: `${screenshotDir}/demo.png`, fullPage: true })
  t.ok(existsSync(`${screenshotDir}/demo.png`), 'screenshot saved to test-results/demo.png')
  t.same(pageErrors, [], 'no uncaught error in the pages')
})

await t.test('the demo exists only with the development secret', async (t) => {
  const dev = await devGateway(t, {})
  t.equal((await fetch(`${dev}/demo`)).status, 200)
  const token = await fetch(`${dev}/demo/token`, { method: 'POST' })
  t.equal(token.status, 200)
  const session = await token.json() as { token: string, sub: string, channel: string, roomToken: string }
  t.match(session, { token: String, sub: /^demo-/, channel: /^user:demo-/, room: 'demo:room', roomToken: String })
  t.equal(decodeJwt(session.token).scope, undefined, 'the demo token carries no scope')
  t.match(decodeJwt(session.roomToken), { sub: session.sub, channel: 'demo:room', publish: true }, 'the room comes with a subscription token (SPEC §9)')
  const named = await fetch(`${dev}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'alice' }) })
  t.match(await named.json(), { sub: 'alice', channel: 'user:alice', room: 'demo:room' }, '?user= picks the demo user')
  const badName = await fetch(`${dev}/demo/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: '<b>' }) })
  t.equal(badName.status, 400)
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
