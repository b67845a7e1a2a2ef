/**
 * CPU per HS256 bearer-token verification, in isolation:
 *
 *   npx tsx bench/jwt-verify.ts
 *
 * - the gateway's verifier (src/server/auth/token-verifier.ts: jose with a KeyObject),
 * - jose's jwtVerify given the secret as bytes on every call,
 * - WebCrypto HMAC verify of the same tokens (the primitive jose 6 is limited to),
 *   plus the same base64url/JSON work,
 * - a minimal node:crypto verifier (createHmac + timingSafeEqual + claims checks),
 *   the floor for any HS256 implementation.
 * 1000 distinct users' tokens, 50 verifications in flight, CPU of all threads.
 */
import { createHmac, timingSafeEqual, webcrypto } from 'node:crypto'
import { jwtVerify } from 'jose'
import { createTokenVerifier } from '../src/server/auth/token-verifier.js'
import { measureAsync, measureSync, type Measurement } from './lib/measure.js'
import { JWT_SECRET, mintTokens, table } from './lib/setup.js'

const tokens = await mintTokens(1000)
const secretBytes = new TextEncoder().encode(JWT_SECRET)
const token = (i: number): string => tokens[i % tokens.length]!

const jwtConfig = { secret: JWT_SECRET, sessionClaim: 'sessionId', clockToleranceSeconds: 5, cacheSize: 0, cacheTtlSeconds: 60, devSecret: false, requireExp: false }
const verifyToken = await createTokenVerifier(jwtConfig)
// With the verified-token cache (JWT_CACHE_SIZE): every token of the pool is seen again.
const verifyCached = await createTokenVerifier({ ...jwtConfig, cacheSize: 10_000 })
const cryptoKey = await webcrypto.subtle.importKey('raw', secretBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify'])
const hmacKey = Buffer.from(JWT_SECRET, 'utf8')

function decodeParts (jwt: string): { signingInput: string, signature: Buffer, header: unknown, payload: { exp?: number, sub?: string } } {
  const first = jwt.indexOf('.')
  const second = jwt.indexOf('.', first + 1)
  return {
    signingInput: jwt.slice(0, second),
    signature: Buffer.from(jwt.slice(second + 1), 'base64url'),
    header: JSON.parse(Buffer.from(jwt.slice(0, first), 'base64url').toString()),
    payload: JSON.parse(Buffer.from(jwt.slice(first + 1, second), 'base64url').toString()) as { exp?: number, sub?: string }
  }
}

function verifyNodeHmac (jwt: string): unknown {
  const { signingInput, signature, header, payload } = decodeParts(jwt)
  if ((header as { alg?: string }).alg !== 'HS256') throw new Error('alg')
  const expected = createHmac('sha256', hmacKey).update(signingInput).digest()
  if (expected.length !== signature.length || !timingSafeEqual(expected, signature)) throw new Error('signature')
  if (typeof payload.exp !== 'number' || payload.exp * 1000 < Date.now()) throw new Error('expired')
  return payload
}

async function verifyWebCrypto (jwt: string): Promise<unknown> {
  const { signingInput, signature, header, payload } = decodeParts(jwt)
  if ((header as { alg?: string }).alg !== 'HS256') throw new Error('alg')
  if (!await webcrypto.subtle.verify('HMAC', cryptoKey, signature, new TextEncoder().encode(signingInput))) throw new Error('signature')
  if (typeof payload.exp !== 'number' || payload.exp * 1000 < Date.now()) throw new Error('expired')
  return payload
}

const results: Measurement[] = [
  await measureAsync('gateway verifyToken (jose 5, KeyObject, node:crypto)', async (i) => await verifyToken(token(i))),
  await measureAsync('gateway verifyToken with the verified-token cache (warm)', async (i) => await verifyCached(token(i))),
  await measureAsync('jose jwtVerify, secret as Uint8Array each call', async (i) => await jwtVerify(token(i), secretBytes, { algorithms: ['HS256'] })),
  await measureAsync('WebCrypto subtle.verify HMAC + same parsing (jose 6 primitive)', async (i) => await verifyWebCrypto(token(i))),
  await measureAsync('node:crypto createHmac + timingSafeEqual (async wrapper)', async (i) => await Promise.resolve(verifyNodeHmac(token(i)))),
  measureSync('node:crypto createHmac + timingSafeEqual (sync)', (i) => verifyNodeHmac(token(i)))
]

console.log(`# HS256 verification — node ${process.version}\n`)
console.log(table(['verifier', 'operations', 'CPU µs/op', 'wall µs/op'], results.map((result) => [
  result.name, String(result.operations), result.cpuMicros.toFixed(1), result.wallMicros.toFixed(1)
])))
