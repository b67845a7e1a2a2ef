/**
 * The React chat's page server, standing in for an app's backend (README.md):
 *   GET  /, /app.js      the built page (node examples/react-chat/build.mjs)
 *   GET  /config.json    where the gateway is, and the room
 *   POST /api/token      a user token that may join the room (the client's getToken)
 *   POST /api/say        publishes a line to the room through the gateway's POST /v1/publish
 *
 * Tokens are signed with the gateway's development secret (SPEC §8: the `.dev-secret`
 * file `npm start` and `npm run token` share), so this runs only against a gateway in
 * dev mode. A demo token from POST /demo/token could not be used: it may join only
 * `user:<sub>`, never a room. Run: `npx tsx examples/react-chat/server.ts`
 * (GATEWAY_URL, default http://127.0.0.1:8080; PORT, default 5173).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { readFile } from 'node:fs/promises'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { jwtVerify } from 'jose'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { readOrCreateDevSecret } from '../../src/server/dev/dev-secret.js'

export interface ChatServerOptions {
  /** The gateway's base URL, as the browser reaches it (another origin than this server). */
  readonly gatewayUrl: string
  /** The gateway's development secret. */
  readonly secret: string
  readonly room?: string
  readonly port?: number
  readonly host?: string
  /** Where build.mjs wrote the page. */
  readonly dist?: string
}

export interface ChatServer {
  readonly url: string
  close: () => Promise<void>
}

const files: Record<string, { readonly file: string, readonly type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/app.js.map': { file: 'app.js.map', type: 'application/json' }
}

const NAME = /^[A-Za-z0-9_-]{1,40}$/

async function readJson (request: IncomingMessage): Promise<Record<string, unknown>> {
  let body = ''
  for await (const chunk of request) {
    body += String(chunk)
    if (body.length > 4096) throw new Error('body too large')
  }
  const parsed: unknown = JSON.parse(body === '' ? '{}' : body)
  return typeof parsed === 'object' && parsed !== null ? parsed as Record<string, unknown> : {}
}

function json (response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

export async function startChatServer (options: ChatServerOptions): Promise<ChatServer> {
  const room = options.room ?? 'chat:lobby'
  const dist = options.dist ?? fileURLToPath(new URL('./dist/', import.meta.url))
  const key = new TextEncoder().encode(options.secret)
  // The backend's own token for POST /v1/publish; it never reaches a browser.
  const serviceToken = await mintDevToken({ secret: options.secret, sub: 'react-chat', scope: 'gateway:publish', expiresIn: '30d' })

  async function handle (request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? '/', 'http://page').pathname
    const served = files[path]
    if (request.method === 'GET' && served !== undefined) {
      const body = await readFile(`${dist}${served.file}`).catch(() => undefined)
      if (body === undefined) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not built: run node examples/react-chat/build.mjs\n')
        return
      }
      response.writeHead(200, { 'content-type': served.type, 'cache-control': 'no-store' }).end(body)
    } else if (request.method === 'GET' && path === '/config.json') {
      json(response, 200, { gatewayUrl: options.gatewayUrl, room })
    } else if (request.method === 'POST' && path === '/api/token') {
      // A real backend would know the user from its own login; here the tab names itself.
      const { user, session } = await readJson(request)
      if (typeof user !== 'string' || !NAME.test(user) || typeof session !== 'string' || session.length > 100) {
        json(response, 400, { error: 'user (letters, digits, _ -) and session required' })
        return
      }
      const token = await mintDevToken({ secret: options.secret, sub: user, sessionId: session, channels: [room], expiresIn: '15m' })
      json(response, 200, { token, user, room })
    } else if (request.method === 'POST' && path === '/api/say') {
      const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1]
      const sub = bearer === undefined ? undefined : await jwtVerify(bearer, key).then(({ payload }) => payload.sub, () => undefined)
      const { text } = await readJson(request)
      if (sub === undefined) {
        json(response, 401, { error: 'a token from /api/token required' })
      } else if (typeof text !== 'string' || text.trim() === '' || text.length > 500) {
        json(response, 400, { error: 'text: 1 to 500 characters' })
      } else {
        const published = await fetch(`${options.gatewayUrl}/v1/publish`, {
          method: 'POST',
          headers: { authorization: `Bearer ${serviceToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ channel: room, data: { user: sub, text } })
        })
        json(response, published.status, await published.json())
      }
    } else if (path === '/favicon.ico') {
      response.writeHead(204).end()
    } else {
      response.writeHead(404).end()
    }
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => { json(response, 500, { error: String(error) }) })
  })
  server.keepAliveTimeout = 1000
  server.listen(options.port ?? 0, options.host ?? '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('not listening')
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${address.port}`,
    close: async () => { await new Promise((resolve) => server.close(resolve)) }
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const chat = await startChatServer({
    gatewayUrl: process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080',
    secret: readOrCreateDevSecret(process.env.DEV_SECRET_FILE ?? '.dev-secret'),
    port: Number(process.env.PORT ?? 5173)
  })
  process.stdout.write(`React chat: ${chat.url}/ (gateway ${process.env.GATEWAY_URL ?? 'http://127.0.0.1:8080'})\n`)
}
