/**
 * usePresence and usePublish (issue 12) in headless Chromium, React 18 and 19, against
 * a scripted gateway (fake-gateway.ts; the server side of presence is built
 * separately): presence is asked once when the channel is confirmed, kept live from
 * join/leave without asking again, and asked again after a reconnect; usePublish is
 * one stable function resolving to the `published` answer. applyPresenceChange, the
 * pure part, is checked in Node too.
 */
import t, { type Test } from 'tap'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Browser, Page } from 'playwright-core'
import { eventually } from '../helpers/gateway.js'
import { bundle, REACT_VERSIONS, type ReactVersion } from './bundle.js'
import { startFakeGateway } from './fake-gateway.js'
import type { PresenceHarness } from './presence-app.js'
import { applyPresenceChange } from '../../packages/react/src/presence-registry.js'

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const missing = existsSync(chromiumPath) ? undefined : `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`

interface PageWindow { harness: PresenceHarness }

await t.test('applyPresenceChange: join adds a user once, leave removes it with its connections', async (t) => {
  const start = { channel: 'room:1', users: [{ userId: 'alice', connections: 2 }], totalUsers: 1, totalConnections: 2, truncated: false }
  const joined = applyPresenceChange(start, ['join', { channel: 'room:1', userId: 'bob', info: { name: 'Bob' } }])
  t.strictSame(joined, { ...start, users: [{ userId: 'alice', connections: 2 }, { userId: 'bob', connections: 1, info: { name: 'Bob' } }], totalUsers: 2, totalConnections: 3 })
  t.equal(applyPresenceChange(joined, ['join', { channel: 'room:1', userId: 'bob' }]), joined, 'a join of a listed user without info changes nothing')
  t.strictSame(applyPresenceChange(joined, ['leave', { channel: 'room:1', userId: 'alice' }]), { ...start, users: [{ userId: 'bob', connections: 1, info: { name: 'Bob' } }], totalUsers: 1, totalConnections: 1 })
  t.equal(applyPresenceChange(start, ['leave', { channel: 'room:1', userId: 'nobody' }]), start, 'a leave of an unknown user changes nothing')
  t.strictSame(applyPresenceChange({ ...start, truncated: true, totalUsers: 1500 }, ['leave', { channel: 'room:1', userId: 'unlisted' }]).totalUsers, 1499, 'truncated: an unlisted leave still counts')
})

const bundles = new Map<ReactVersion, string>()
for (const version of REACT_VERSIONS) bundles.set(version, await bundle(fileURLToPath(new URL('./presence-app.ts', import.meta.url)), version, 'browser'))

const gateway = await startFakeGateway((request, response) => {
  const url = new URL(request.url ?? '/', 'http://page')
  const script = bundles.get(Number(/^\/app-(\d+)\.js$/.exec(url.pathname)?.[1]) as ReactVersion)
  if (script !== undefined) response.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
  else if (url.pathname === '/') response.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/app-${url.searchParams.get('react') ?? ''}.js"></script>`)
  else if (url.pathname === '/favicon.ico') response.writeHead(204).end()
  else return false
  return true
})
t.teardown(async () => { await gateway.close() })

async function usersShown (page: Page): Promise<string[]> {
  return await page.$$eval('#room li', (items) => items.map((item) => item.textContent ?? ''))
}

async function showing (page: Page, users: string[]): Promise<void> {
  await page.waitForFunction((expected) => JSON.stringify(Array.from(document.querySelectorAll('#room li'), (item) => item.textContent)) === expected, JSON.stringify(users), { timeout: 15_000 })
}

const presenceQueries = (channel: string): number => gateway.received.filter((frame) => frame.type === 'presence' && frame.channel === channel).length

await t.test('usePresence and usePublish in headless Chromium', { skip: missing }, async (t) => {
  const { chromium } = await import('playwright-core')
  const browser: Browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
  t.teardown(async () => { await browser.close() })

  for (const version of REACT_VERSIONS) {
    await t.test(`React ${version}: asked once, live from join/leave, asked again after a reconnect; usePublish stable`, async (t: Test) => {
      const channel = `room:react-${version}`
      gateway.members.set(channel, [{ userId: 'alice', connections: 2, info: { name: 'Alice' } }, { userId: 'bob', connections: 1 }])
      const page = await browser.newPage()
      t.teardown(async () => { await page.close() })
      const problems: string[] = []
      page.on('pageerror', (error) => { problems.push(`uncaught: ${error.message}`) })
      page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`console.${message.type()}: ${message.text()}`) })
      await page.goto(`${gateway.url}/?react=${version}`)
      await page.waitForFunction(() => 'harness' in globalThis)
      t.match(await page.evaluate(() => (globalThis as unknown as PageWindow).harness.reactVersion), new RegExp(`^${version}\\.`), `React ${version}`)

      await page.evaluate(({ url, channel }) => { (globalThis as unknown as PageWindow).harness.mount(url, channel) }, { url: gateway.url, channel })
      await showing(page, ['alice', 'bob'])
      const first = await page.evaluate(() => (globalThis as unknown as PageWindow).harness.states.map((state) => state.status))
      t.strictSame(first.slice(0, 2), ['idle', 'loading'], 'idle, then loading until the answer')
      t.equal(presenceQueries(channel), 1, 'one presence query once subscribed')

      // Live: the membership the scripted server holds changes with each join/leave pushed.
      gateway.push(channel, { type: 'join', channel, userId: 'carol', info: { name: 'Carol' } })
      await showing(page, ['alice', 'bob', 'carol'])
      gateway.push(channel, { type: 'leave', channel, userId: 'bob' })
      await showing(page, ['alice', 'carol'])
      gateway.push(channel, { type: 'join', channel, userId: 'dan' })
      await showing(page, ['alice', 'carol', 'dan'])
      const state = await page.evaluate(() => (globalThis as unknown as PageWindow).harness.states.at(-1))
      t.match(state, { status: 'ready', presence: { channel, totalUsers: 3, totalConnections: 4, truncated: false, users: [{ userId: 'alice', info: { name: 'Alice' } }, { userId: 'carol', info: { name: 'Carol' } }, { userId: 'dan' }] } })
      t.equal(presenceQueries(channel), 1, 'three changes, still one query')

      const published = await page.evaluate(async (channel) => await (globalThis as unknown as PageWindow).harness.publish(channel, { text: 'hi' }), channel)
      t.match(published, { channel, offset: /^e:\d+$/ }, 'usePublish resolves to the published answer')
      t.strictSame(gateway.received.filter((frame) => frame.type === 'publish').at(-1), { type: 'publish', id: gateway.received.filter((frame) => frame.type === 'publish').at(-1)?.id, channel, data: { text: 'hi' } })
      await page.evaluate(() => { (globalThis as unknown as PageWindow).harness.rerender(20) })
      t.equal(await page.evaluate(() => (globalThis as unknown as PageWindow).harness.distinctPublishes()), 1, 'usePublish: one function over every render')
      t.equal(presenceQueries(channel), 1, 're-renders ask nothing')

      // While the socket is down, erin arrives and carol goes: no join/leave reaches the page; the refetch shows it.
      gateway.members.set(channel, [{ userId: 'alice', connections: 1 }, { userId: 'dan', connections: 1 }, { userId: 'erin', connections: 1 }])
      gateway.dropAll()
      await showing(page, ['alice', 'dan', 'erin'])
      t.equal(presenceQueries(channel), 2, 'asked again once after the reconnect')
      await eventually(() => gateway.received.filter((frame) => frame.type === 'subscribe' && frame.channel === channel).length === 2)

      await page.evaluate(() => { (globalThis as unknown as PageWindow).harness.unmount() })
      await eventually(() => gateway.received.some((frame) => frame.type === 'unsubscribe' && frame.channel === channel))
      t.same(await usersShown(page), [], 'unmounted')
      t.same(problems, [], 'no uncaught error, no React warning')
    })
  }
})
