import t from 'tap'
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { buildApp } from '../../src/server/app.js'
import { configuredEngine } from '../../src/server/engine/create-engine.js'
import { loadConfig } from '../../src/server/config.js'
import { startChatServer } from '../../examples/react-chat/server.js'
import { eventually } from '../helpers/gateway.js'
import { projectRoot } from '../helpers/build.js'
import { countSockets } from './count-sockets.js'

// examples/react-chat (issue 11, point 5) as its README runs it: built by its own build
// script from the workspace packages' dist/, served by its own server (the app's
// backend), against a gateway in dev mode on another port (cross-origin, as `npm start`
// allows any origin in dev mode). Two tabs in the room: a line said in one shows in both.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const missing = existsSync(chromiumPath) ? undefined : `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`
const SECRET = 'a-development-secret-of-thirty-two-characters'

interface SocketEvent { readonly kind: string, readonly frame?: { readonly type: string, readonly channel?: string } }
interface PageWindow { __ws: { constructed: number, events: SocketEvent[] } }

await t.test('the React chat example: open, a line said in one tab appears in both, one socket per tab', { skip: missing }, async (t) => {
  // The example bundles the packages as an app gets them: their dist/ (npm test builds them first).
  if (!existsSync(`${projectRoot}packages/client/dist/index.js`) || !existsSync(`${projectRoot}packages/react/dist/index.js`)) {
    execFileSync('npm', ['run', 'build:packages'], { cwd: projectRoot, stdio: 'ignore' })
  }
  // Into a temporary directory: examples/react-chat/dist stays what the developer built.
  const dist = mkdtempSync(join(tmpdir(), 'rg-react-chat-'))
  t.teardown(() => { rmSync(dist, { recursive: true, force: true }) })
  const built = spawnSync(process.execPath, ['examples/react-chat/build.mjs', `--outdir=${dist}`], { cwd: projectRoot, encoding: 'utf8', timeout: 60_000 })
  t.equal(built.status, 0, `node examples/react-chat/build.mjs exits 0${built.stderr === '' ? '' : `: ${built.stderr}`}`)
  const bytes = statSync(join(dist, 'app.js')).size
  t.comment(`examples/react-chat/dist/app.js: ${(bytes / 1024).toFixed(1)} KB minified (React 19 included)`)

  // No JWT configuration: the development secret and the embedded engine, as `npm start`.
  const config = loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', SHUTDOWN_GRACE_MS: '200' }, () => SECRET)
  const gateway = await buildApp(config, { engine: configuredEngine(config) })
  gateway.server.keepAliveTimeout = 1000
  await gateway.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(async () => { await gateway.close() })
  const address = gateway.server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  const gatewayUrl = `http://127.0.0.1:${address.port}`

  const chat = await startChatServer({ gatewayUrl, secret: SECRET, dist: `${dist}/` })
  t.teardown(async () => { await chat.close() })
  t.not(new URL(chat.url).port, String(address.port), 'page and gateway on different ports')

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking']
  })
  t.teardown(async () => { await browser.close() })

  const problems: string[] = []
  async function tab (): Promise<Page> {
    // A context each: its own sessionStorage, so its own user.
    const context = await browser.newContext()
    const page = await context.newPage()
    page.on('pageerror', (error) => { problems.push(`uncaught: ${error.message}`) })
    page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`console.${message.type()}: ${message.text()}`) })
    await page.addInitScript(countSockets)
    await page.goto(`${chat.url}/`)
    await page.waitForSelector('#status[data-status="open"]', { timeout: 15_000 })
    await page.waitForSelector('#channel[data-status="subscribed"]', { timeout: 15_000 })
    return page
  }
  const alice = await tab()
  const bob = await tab()
  t.equal(await alice.textContent('#status'), 'open', 'useConnectionStatus shows open')
  const aliceName = await alice.textContent('#user')
  t.match(aliceName, /^guest-[a-z0-9]+$/)
  t.not(await bob.textContent('#user'), aliceName, 'two users')

  await alice.fill('#text', 'hello lobby')
  const [said] = await Promise.all([
    alice.waitForResponse((response) => new URL(response.url()).pathname === '/api/say', { timeout: 15_000 }),
    alice.click('#send')
  ])
  // The status only: reading the body of a page's fetch from playwright can stall.
  t.equal(said.status(), 200, 'the backend published it')
  for (const [name, page] of [['alice', alice], ['bob', bob]] as const) {
    await page.waitForSelector('#messages li', { timeout: 15_000 })
    const lines = await page.$$eval('#messages li', (nodes) => nodes.map((node) => node.textContent))
    t.same(lines, [`${aliceName ?? ''}hello lobby`], `${name}'s tab shows the line once, through useChannel`)
  }

  for (const [name, page] of [['alice', alice], ['bob', bob]] as const) {
    const { constructed, events } = await page.evaluate(() => (globalThis as unknown as PageWindow).__ws)
    t.equal(constructed, 1, `${name}: exactly one socket`)
    t.same(events.filter((event) => event.kind === 'out' && event.frame?.type === 'subscribe').map((event) => event.frame?.channel), ['chat:lobby'], `${name}: one subscribe, to chat:lobby`)
  }
  await eventually(() => gateway.hub.size === 2)
  t.equal(gateway.hub.size, 2, 'the gateway holds two connections, one per tab')
  t.same(problems, [], 'no uncaught error, no React warning')
})
