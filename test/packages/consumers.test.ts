import t from 'tap'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { join, relative } from 'node:path'
import { build } from 'esbuild'
import { Redis } from 'ioredis'
import { RedisServer } from '../helpers/redis-server.js'
import { startGateway } from '../helpers/gateway.js'
import { publish } from '../helpers/relay.js'
import { userToken } from '../helpers/tokens.js'
import { consumerProject, writeFiles } from './helpers/consumer-project.js'
import { browserAppSource, nodeConsumerSource } from './helpers/consumer-sources.js'

// Issue 11, point 2: apps built on the packages as `npm install` of their tarballs
// gives them, against a real gateway on a real redis-server. A Node 20 script (ws
// injected) and a React app bundled by esbuild from the app's node_modules, run in
// headless Chromium on another origin.
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const noChromium = existsSync(chromiumPath) ? undefined : `Chromium not found at ${chromiumPath}: apt-get install chromium (or set CHROMIUM_PATH)`

const project = await consumerProject(t)
const redis = await RedisServer.start()
t.teardown(async () => { await redis.stop() })
const admin = new Redis(redis.url)
t.teardown(async () => { await admin.quit() })

await t.test('a Node app with ws injected connects, receives what a backend publishes, and its send reaches the inbound stream', async (t) => {
  const gateway = await startGateway(t, { REDIS_URL: redis.url })
  await writeFiles(project, { 'consumer.mjs': nodeConsumerSource })
  const channel = 'user:node-consumer'
  const child = spawn(process.execPath, ['consumer.mjs'], {
    cwd: project.dir,
    env: { ...process.env, GATEWAY_URL: gateway.baseUrl, GATEWAY_JWT: await userToken('node-consumer', 'node-session'), CHANNEL: channel },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
    killSignal: 'SIGKILL'
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>

  const lines: unknown[] = []
  let offset: unknown
  for await (const line of createInterface({ input: child.stdout })) {
    const parsed = JSON.parse(line) as { step: string }
    lines.push(parsed)
    if (parsed.step === 'subscribed') {
      const published = await publish(gateway, { channel, data: { text: 'from the backend' } })
      t.equal(published.status, 200, 'the backend published')
      offset = published.body.offset
    }
  }
  const [code, signal] = await exited
  t.same({ code, signal, stderr }, { code: 0, signal: null, stderr: '' }, 'the script ran to the end on its own')
  t.same(lines, [
    { step: 'status', status: 'connecting' },
    { step: 'status', status: 'open' },
    { step: 'subscribed', channel, recovered: true },
    { step: 'message', channel, offset, data: { text: 'from the backend' } },
    { step: 'acked' },
    { step: 'status', status: 'closed' }
  ], 'exactly what the app saw, in order')

  const inbound = await admin.xrange(`${gateway.config.redisKeyPrefix}inbound`, '-', '+')
  t.equal(inbound.length, 1, 'one entry on the inbound stream')
  const fields = Object.fromEntries((inbound[0]?.[1] ?? []).flatMap((value, i, all) => i % 2 === 0 ? [[value, all[i + 1]]] : []))
  t.match(fields, { userId: 'node-consumer', sessionId: 'node-session', connectionId: /.+/, id: /.+/, data: '{"text":"hello from the consumer"}' }, 'the send, with its identity')
})

await t.test('a React app bundled from the installed packages renders a published message in headless Chromium, cross-origin, on one socket', { skip: noChromium }, async (t) => {
  await writeFiles(project, { 'src/app.jsx': browserAppSource })
  // No aliases, no plugins: esbuild resolves react, react-dom and @realtime-gateway/* from the app's node_modules.
  const bundled = await build({
    absWorkingDir: project.dir,
    entryPoints: ['src/app.jsx'],
    bundle: true,
    write: false,
    metafile: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent'
  })
  const script = bundled.outputFiles[0]!.text
  const inputs = Object.keys(bundled.metafile.inputs).map((input) => relative(project.dir, join(project.dir, input)))
  t.ok(inputs.includes('node_modules/@realtime-gateway/client/dist/index.js'), 'the client comes from the installed package')
  t.ok(inputs.includes('node_modules/@realtime-gateway/react/dist/index.js'), 'the React bindings too')
  t.same(inputs.filter((input) => input !== 'src/app.jsx' && !input.startsWith('node_modules/')), [], 'nothing from outside the app')
  t.comment(`React app bundle: ${script.length} bytes minified`)

  const pages = createServer((request, response) => {
    if (request.url === '/app.js') response.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
    else if (request.url?.startsWith('/?') === true) {
      const config = new URL(request.url, 'http://page').searchParams.get('config') ?? '{}'
      response.writeHead(200, { 'content-type': 'text/html' })
        .end(`<!doctype html><meta charset="utf-8"><div id="root"></div><script>window.consumer = ${config}</script><script type="module" src="/app.js"></script>`)
    } else if (request.url === '/favicon.ico') response.writeHead(204).end()
    else response.writeHead(404).end()
  })
  pages.keepAliveTimeout = 1000
  pages.listen(0, '127.0.0.1')
  await once(pages, 'listening')
  t.teardown(async () => { await new Promise((resolve) => pages.close(resolve)) })
  const pageOrigin = `http://127.0.0.1:${(pages.address() as { port: number }).port}`

  // Another port: the ticket request is a CORS request and the socket a cross-origin upgrade.
  const gateway = await startGateway(t, { REDIS_URL: redis.url, CORS_ORIGINS: pageOrigin, ALLOWED_ORIGINS: pageOrigin })
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({ executablePath: chromiumPath, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'], timeout: 30_000 })
  t.teardown(async () => { await browser.close() })
  const page = await browser.newPage()
  const problems: string[] = []
  page.on('pageerror', (error) => { problems.push(`uncaught: ${error.message}`) })
  page.on('console', (message) => { if (message.type() === 'error' || message.type() === 'warning') problems.push(`console.${message.type()}: ${message.text()}`) })
  // Every socket the page builds is counted.
  await page.addInitScript(`
    window.__sockets = 0
    const Native = window.WebSocket
    window.WebSocket = class CountingWebSocket extends Native {
      constructor (url, protocols) { super(url, protocols); window.__sockets += 1 }
    }
  `)

  const channel = 'user:react-consumer'
  const config = { url: gateway.baseUrl, token: await userToken('react-consumer', 'react-session'), channel }
  await page.goto(`${pageOrigin}/?config=${encodeURIComponent(JSON.stringify(config))}`)
  await page.waitForSelector('#status[data-status="open"][data-channel="subscribed"]', { timeout: 15_000 })
  t.pass('connected and subscribed')

  const published = await publish(gateway, { channel, data: { text: 'rendered' } })
  t.equal(published.status, 200, 'the backend published')
  await page.waitForSelector('#messages li', { timeout: 15_000 })
  const rendered = await page.$$eval('#messages li', (items) => items.map((item) => ({ offset: item.getAttribute('data-offset'), text: item.textContent })))
  t.same(rendered, [{ offset: published.body.offset, text: '{"text":"rendered"}' }], 'the message is on the page')
  t.equal(await page.evaluate(() => (globalThis as unknown as { __sockets: number }).__sockets), 1, 'one socket')
  t.equal(gateway.app.hub.size, 1, 'the gateway holds one connection')
  t.same(problems, [], 'no uncaught error, no console error or warning')
})
