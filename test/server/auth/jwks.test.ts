import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:http'
import { once } from 'node:events'
import { SignJWT, exportJWK, generateKeyPair, type JWK, type KeyLike } from 'jose'
import { startGateway, type Gateway } from '../../helpers/gateway.js'
import { freePort } from '../../helpers/redis-server.js'

/**
 * JWT_JWKS_URL against a real HTTP server (SPEC §3): a key set that cannot be had
 * (5xx, not JSON, no answer, nothing listening) is the gateway's problem, answered
 * 503 AUTH_UNAVAILABLE with Retry-After; a token the key set does not vouch for
 * (unknown kid, bad signature) stays 401 INVALID_TOKEN.
 */

type Mode = 'ok' | 'error' | 'not-json' | 'hang'

const rsa = await generateKeyPair('RS256')
const ec = await generateKeyPair('ES256')
const impostor = await generateKeyPair('RS256')

async function publicJwk (key: KeyLike, kid: string, alg: string): Promise<JWK> {
  return { ...await exportJWK(key), kid, alg, use: 'sig' }
}
const keySet = { keys: [await publicJwk(rsa.publicKey, 'rsa-1', 'RS256'), await publicJwk(ec.publicKey, 'ec-1', 'ES256')] }

/** The identity provider's JWKS endpoint, switchable between answers; counts fetches. */
class KeySetServer {
  mode: Mode = 'error'
  fetches = 0
  readonly port: number
  #server: Server | undefined

  constructor (port: number) {
    this.port = port
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}/.well-known/jwks.json`
  }

  async start (): Promise<void> {
    const server = createServer((request, response) => {
      this.fetches += 1
      if (this.mode === 'hang') return
      if (this.mode === 'error') {
        response.writeHead(500, { 'content-type': 'text/plain' }).end('upstream exploded')
        return
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end(this.mode === 'ok' ? JSON.stringify(keySet) : '<html>maintenance</html>')
    })
    server.listen(this.port, '127.0.0.1')
    await once(server, 'listening')
    this.#server = server
  }

  async stop (): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    this.#server = undefined
    server.closeAllConnections()
    server.close()
    await once(server, 'close')
  }
}

const jwks = new KeySetServer(await freePort())
await jwks.start()
t.teardown(async () => { await jwks.stop() })

const gateway = await startGateway(t, { JWT_JWKS_URL: jwks.url })

let minted = 0
/** A user token signed with `key`; every one is distinct, so the verifier's cache never answers for it. */
async function token (key: KeyLike, alg: string, kid: string): Promise<string> {
  minted += 1
  return await new SignJWT({ sessionId: `s${minted}` })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setSubject('alice')
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(key)
}

interface Answer { status: number, body: Record<string, unknown>, headers: Headers }

async function ticket (gw: Gateway, jwt: string): Promise<Answer> {
  const response = await fetch(`${gw.baseUrl}/ws-ticket`, { method: 'POST', headers: { authorization: `Bearer ${jwt}` } })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}

function assertUnavailable (t: Test, answer: Answer): void {
  t.equal(answer.status, 503)
  t.strictSame(answer.body, {
    error: 'SERVICE_UNAVAILABLE',
    code: 'AUTH_UNAVAILABLE',
    message: 'Token keys could not be fetched',
    traceId: answer.headers.get('x-request-id')
  })
  t.match(answer.headers.get('retry-after'), /^[1-9][0-9]*$/, 'Retry-After in whole seconds')
}

function assertInvalid (t: Test, answer: Answer): void {
  t.equal(answer.status, 401)
  t.strictSame(answer.body, { error: 'UNAUTHORIZED', code: 'INVALID_TOKEN', message: 'Token is invalid', traceId: answer.headers.get('x-request-id') })
}

await t.test('the JWKS endpoint answers 500: 503 AUTH_UNAVAILABLE with Retry-After, not 401', async (t) => {
  jwks.mode = 'error'
  const before = jwks.fetches
  assertUnavailable(t, await ticket(gateway, await token(rsa.privateKey, 'RS256', 'rsa-1')))
  assertUnavailable(t, await ticket(gateway, await token(ec.privateKey, 'ES256', 'ec-1')))
  t.equal(jwks.fetches - before, 2, 'each request tried the endpoint again (nothing was cached)')
})

await t.test('the JWKS endpoint answers 200 with a body that is not JSON: 503', async (t) => {
  jwks.mode = 'not-json'
  assertUnavailable(t, await ticket(gateway, await token(rsa.privateKey, 'RS256', 'rsa-1')))
})

await t.test('nothing listens at the JWKS URL: 503', async (t) => {
  await jwks.stop()
  t.teardown(async () => { await jwks.start() })
  assertUnavailable(t, await ticket(gateway, await token(rsa.privateKey, 'RS256', 'rsa-1')))
})

await t.test('the JWKS endpoint never answers: 503 once jose gives up, no hang', async (t) => {
  jwks.mode = 'hang'
  const started = Date.now()
  assertUnavailable(t, await ticket(gateway, await token(ec.privateKey, 'ES256', 'ec-1')))
  t.ok(Date.now() - started < 15_000, 'answered (jose times the fetch out after 5 s)')
})

await t.test('the JWKS endpoint is back: RS256 and ES256 tokens get tickets', async (t) => {
  jwks.mode = 'ok'
  for (const [key, alg, kid] of [[rsa.privateKey, 'RS256', 'rsa-1'], [ec.privateKey, 'ES256', 'ec-1']] as const) {
    const answer = await ticket(gateway, await token(key, alg, kid))
    t.equal(answer.status, 200, `${alg}: ${JSON.stringify(answer.body)}`)
    t.match(answer.body.ticket, /^[A-Za-z0-9_-]{43}$/)
  }
})

await t.test('a token the key set does not vouch for stays 401 INVALID_TOKEN', async (t) => {
  jwks.mode = 'ok'
  assertInvalid(t, await ticket(gateway, await token(impostor.privateKey, 'RS256', 'unknown-kid')))
  assertInvalid(t, await ticket(gateway, await token(impostor.privateKey, 'RS256', 'rsa-1')))
  assertInvalid(t, await ticket(gateway, await token(ec.privateKey, 'ES256', 'rsa-1')))
})

await t.test('a key set fetched once keeps verifying while the endpoint fails', async (t) => {
  jwks.mode = 'error'
  const answer = await ticket(gateway, await token(rsa.privateKey, 'RS256', 'rsa-1'))
  t.equal(answer.status, 200, 'served from the cached key set')
})
