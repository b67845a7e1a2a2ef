import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { RedisServer } from '../helpers/redis-server.js'
import { eventually, startGateway, type Gateway } from '../helpers/gateway.js'
import { publish } from '../helpers/relay.js'
import { userToken } from '../helpers/tokens.js'
import { bundle, REACT_VERSIONS, type ReactVersion } from './bundle.js'
import type { Harness, MountOptions } from './app.js'
import { countSockets } from './count-sockets.js'

// Issue 11: @realtime-gateway/react in real headless Chromium, React 18 and 19, the page
// and the gateway on different ports (cross-origin), sockets and frames counted in the
// page. `.ci/run` installs Chromium; without it this is reported as skipped, with the reason.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const missing = existsSync(chromiumPath) ? undefined : `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`

interface SocketEvent {
  readonly socket: number
  readonly kind: 'in' | 'out' | 'close' | 'closed'
  readonly frame?: { readonly type: string, readonly channel?: string } & Record<string, unknown>
  readonly code?: number
}
interface PageWindow { harness: Harness, __ws: { constructed: number, events: SocketEvent[] } }

const bundles = new Map<ReactVersion, string>()
for (const version of REACT_VERSIONS) bundles.set(version, await bundle(fileURLToPath(new URL('./app.ts', import.meta.url)), version, 'browser'))

// The page's origin: a plain HTTP server on its own port.
const pages = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://page')
  const version = Number(/^\/app-(\d+)\.js$/.exec(url.pathname)?.[1])
  const script = bundles.get(version as ReactVersion)
  if (script !== undefined) {
    response.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
  } else if (url.pathname === '/') {
    response.writeHead(200, { 'content-type': 'text/html' })
      .end(`<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/app-${url.searchParams.get('react') ?? ''}.js"></script>`)
  } else if (url.pathname === '/favicon.ico') {
    response.writeHead(204).end()
  } else {
    response.writeHead(404).end()
  }
})
pages.keepAliveTimeout = 1000
pages.listen(0, '127.0.0.1')
await once(pages, 'listening')
t.teardown(async () => { await new Promise((resolve) => pages.close(resolve)) })
const pagePort = (pages.address() as { port: number }).port
const pageOrigin = `http://127.0.0.1:${pagePort}`

let users = 0

/** Uncaught errors and console errors (React's development warnings among them) per page. */
const problems = new WeakMap<Page, string[]>()

async function openPage (t: Test, browser: Browser, version: ReactVersion): Promise<Page> {
  const page = await browser.newPage()
  t.teardown(async () => { await page.close() })
  const seen: string[] = []
  problems.set(page, seen)
  page.on('pageerror', (error) => { seen.push(`uncaught: ${error.message}`) })
  page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') seen.push(`console.${message.type()}: ${message.text()}`) })
  await page.addInitScript(countSockets)
  await page.goto(`${pageOrigin}/?react=${version}`)
  await page.waitForFunction(() => 'harness' in globalThis)
  t.match(await page.evaluate(() => (globalThis as unknown as PageWindow).harness.reactVersion), new RegExp(`^${version}\\.`), `React ${version}`)
  return page
}

/** Mounts a scenario for a new user and waits until the socket is open and the channel confirmed. */
async function mount (page: Page, gateway: Gateway, scenario: MountOptions['scenario'], listeners?: number): Promise<string> {
  users += 1
  const sub = `react-user-${users}`
  const channel = `user:${sub}`
  const options: MountOptions = { scenario, url: gateway.baseUrl, token: await userToken(sub, `tab-${users}`), channel, listeners }
  await page.evaluate((options) => { (globalThis as unknown as PageWindow).harness.mount(options) }, options)
  await page.waitForSelector('#status[data-status="open"]', { timeout: 15_000 })
  await page.waitForFunction((channel) => (globalThis as unknown as PageWindow).__ws.events.some((event) => event.kind === 'in' && event.frame?.type === 'subscribed' && event.frame.channel === channel), channel, { timeout: 15_000 })
  return channel
}

async function socketEvents (page: Page): Promise<{ constructed: number, events: SocketEvent[] }> {
  return await page.evaluate(() => (globalThis as unknown as PageWindow).__ws)
}

function sent (events: SocketEvent[], type: string): SocketEvent[] {
  return events.filter((event) => event.kind === 'out' && event.frame?.type === type)
}

async function receivedCount (page: Page, count: number): Promise<void> {
  await page.waitForFunction((count) => (globalThis as unknown as PageWindow).harness.received.length >= count, count, { timeout: 15_000 })
}

/** Unmounts everything: `unsubscribe` goes out on the socket, then the client closes it, and the gateway sees it go. */
async function unmountAndCheck (t: Test, page: Page, gateway: Gateway, channel: string): Promise<void> {
  await page.evaluate(() => { (globalThis as unknown as PageWindow).harness.unmount() })
  await page.waitForFunction(() => (globalThis as unknown as PageWindow).__ws.events.some((event) => event.kind === 'closed'), undefined, { timeout: 15_000 })
  const { events } = await socketEvents(page)
  const unsubscribe = events.findIndex((event) => event.kind === 'out' && event.frame?.type === 'unsubscribe' && event.frame.channel === channel)
  const close = events.findIndex((event) => event.kind === 'close')
  t.ok(unsubscribe >= 0, 'unmount sends unsubscribe')
  t.ok(close > unsubscribe, 'and then closes the socket')
  t.equal(events[close]?.code, 1000, 'a normal close')
  t.equal(sent(events, 'unsubscribe').length, 1, 'one unsubscribe frame')
  await eventually(() => gateway.app.hub.size === 0)
  t.equal(gateway.app.hub.size, 0, 'the gateway has no connection left')
  t.same(problems.get(page), [], 'no uncaught error, no React warning')
}

await t.test('@realtime-gateway/react in headless Chromium, cross-origin', { skip: missing }, async (t) => {
  const { chromium } = await import('playwright-core')
  const redis = await RedisServer.start()
  t.teardown(async () => { await redis.stop() })
  // Page and gateway on different ports: the ticket request is a CORS request, the socket a cross-origin upgrade.
  const gateway = await startGateway(t, { REDIS_URL: redis.url, CORS_ORIGINS: pageOrigin, ALLOWED_ORIGINS: pageOrigin })
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  t.teardown(async () => { await browser.close() })

  for (const version of REACT_VERSIONS) {
    await t.test(`React ${version}: 100 re-renders with fresh inline callbacks keep one socket and one subscribe; the message reaches the newest callback`, async (t) => {
      const page = await openPage(t, browser, version)
      const channel = await mount(page, gateway, 'rerender')
      const last = await page.evaluate(() => (globalThis as unknown as PageWindow).harness.rerender(100))
      t.equal(last, 100, '100 re-renders committed')
      t.equal(await page.getAttribute('#status', 'data-status'), 'open', 'useConnectionStatus says open')

      const published = await publish(gateway, { channel, data: { n: 1 } })
      t.equal(published.status, 200, 'published')
      await receivedCount(page, 1)
      const received = await page.evaluate(() => (globalThis as unknown as PageWindow).harness.received)
      t.same(received, [{ listener: 'listener-0', render: 100, data: { n: 1 } }], 'delivered once, to the callback of the last render')

      await page.evaluate(async () => { await (globalThis as unknown as PageWindow).harness.send({ hello: 'gateway' }) })
      t.pass('useSend resolves on the ack')
      t.equal(await page.evaluate(() => (globalThis as unknown as PageWindow).harness.distinctSends()), 1, 'useSend returned the same function on all 101 renders')

      const { constructed, events } = await socketEvents(page)
      t.equal(constructed, 1, 'exactly one socket')
      t.equal(sent(events, 'subscribe').length, 1, 'exactly one subscribe frame')
      t.equal(sent(events, 'unsubscribe').length, 0, 'no unsubscribe while mounted')
      t.equal(gateway.app.hub.size, 1, 'the gateway holds one connection')
      await unmountAndCheck(t, page, gateway, channel)
    })

    await t.test(`React ${version}: StrictMode's double mount opens one socket and subscribes once`, async (t) => {
      const page = await openPage(t, browser, version)
      const channel = await mount(page, gateway, 'strict')
      // Long enough for a second socket's ticket request and upgrade, had one been started.
      await new Promise((resolve) => setTimeout(resolve, 500))
      const { constructed, events } = await socketEvents(page)
      t.equal(constructed, 1, 'exactly one socket')
      t.equal(sent(events, 'subscribe').length, 1, 'exactly one subscribe frame')
      t.equal(events.filter((event) => event.kind === 'close').length, 0, 'never closed')
      t.equal(gateway.app.hub.size, 1, 'the gateway holds one connection')

      t.equal((await publish(gateway, { channel, data: 'strict' })).status, 200, 'published')
      await receivedCount(page, 1)
      await new Promise((resolve) => setTimeout(resolve, 200))
      const received = await page.evaluate(() => (globalThis as unknown as PageWindow).harness.received)
      t.same(received.map((entry) => entry.data), ['strict'], 'the handler runs once per message, not once per mount')
      await unmountAndCheck(t, page, gateway, channel)
    })

    await t.test(`React ${version}: 10 components on one channel share one subscription`, async (t) => {
      const page = await openPage(t, browser, version)
      const channel = await mount(page, gateway, 'many', 10)
      let { events } = await socketEvents(page)
      t.equal(sent(events, 'subscribe').length, 1, 'one subscribe frame for 10 components')

      t.equal((await publish(gateway, { channel, data: 'to all' })).status, 200, 'published')
      await receivedCount(page, 10)
      const received = await page.evaluate(() => (globalThis as unknown as PageWindow).harness.received)
      t.same(received.map((entry) => entry.listener).sort(), Array.from({ length: 10 }, (_, i) => `listener-${i}`).sort(), 'each component gets it once')

      await page.evaluate(() => { (globalThis as unknown as PageWindow).harness.setListeners(3) })
      await new Promise((resolve) => setTimeout(resolve, 200))
      events = (await socketEvents(page)).events
      t.equal(sent(events, 'unsubscribe').length, 0, 'seven leaving, three staying: still subscribed')

      await page.evaluate(() => { (globalThis as unknown as PageWindow).harness.setListeners(0) })
      await page.waitForFunction(() => (globalThis as unknown as PageWindow).__ws.events.some((event) => event.kind === 'out' && event.frame?.type === 'unsubscribe'), undefined, { timeout: 15_000 })
      await new Promise((resolve) => setTimeout(resolve, 200))
      const after = await socketEvents(page)
      t.equal(sent(after.events, 'unsubscribe').length, 1, 'the last one leaving unsubscribes, once')
      t.equal(after.events.filter((event) => event.kind === 'close').length, 0, 'the provider is still mounted: the socket stays open')
      t.equal(await page.getAttribute('#status', 'data-status'), 'open', 'useConnectionStatus still says open')
      t.equal(after.constructed, 1, 'one socket throughout')

      await page.evaluate(() => { (globalThis as unknown as PageWindow).harness.unmount() })
      await page.waitForFunction(() => (globalThis as unknown as PageWindow).__ws.events.some((event) => event.kind === 'closed'), undefined, { timeout: 15_000 })
      const final = await socketEvents(page)
      t.equal(sent(final.events, 'unsubscribe').length, 1, 'nothing left to unsubscribe at unmount')
      t.equal(final.events.filter((event) => event.kind === 'close').length, 1, 'the last provider unmount closes the client')
      await eventually(() => gateway.app.hub.size === 0)
      t.same(problems.get(page), [], 'no uncaught error, no React warning')
    })
  }
})
