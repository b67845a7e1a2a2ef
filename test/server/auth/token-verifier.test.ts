import t from 'tap'
import { SignJWT } from 'jose'
import { createTokenVerifier } from '../../../src/server/auth/token-verifier.js'
import { GatewayError } from '../../../src/server/errors.js'
import { TEST_SECRET } from '../../helpers/tokens.js'

const jwtConfig = { secret: TEST_SECRET, sessionClaim: 'sessionId', clockToleranceSeconds: 0, cacheSize: 100, cacheTtlSeconds: 60, devSecret: false, requireExp: true }

async function sign (claims: Record<string, unknown>, exp: number, secret = TEST_SECRET): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime(exp).sign(new TextEncoder().encode(secret))
}

async function codeOf (pending: Promise<unknown>): Promise<string> {
  try {
    await pending
    return 'ok'
  } catch (err) {
    return err instanceof GatewayError ? err.code : String(err)
  }
}

/** The refusal as `CODE: message`, or 'ok'. */
async function refusalOf (pending: Promise<unknown>): Promise<string> {
  try {
    await pending
    return 'ok'
  } catch (err) {
    return err instanceof GatewayError ? `${err.code}: ${err.message}` : String(err)
  }
}

async function signWithoutExp (claims: Record<string, unknown>): Promise<string> {
  return await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().sign(new TextEncoder().encode(TEST_SECRET))
}

await t.test('a token without exp is refused as INVALID_TOKEN saying exp is required (the default)', async (t) => {
  const verify = await createTokenVerifier(jwtConfig)
  t.equal(await refusalOf(verify(await signWithoutExp({ sessionId: 's1' }))), 'INVALID_TOKEN: Token has no exp claim; tokens must expire')
  const service = await signWithoutExp({ scope: 'gateway:publish' })
  t.equal(await refusalOf(verify(service)), 'INVALID_TOKEN: Token has no exp claim; tokens must expire', 'service tokens too')
})

await t.test('an exp that is not a number is INVALID_TOKEN', async (t) => {
  const verify = await createTokenVerifier(jwtConfig)
  const token = await signWithoutExp({ sessionId: 's1', exp: 'tomorrow' })
  t.equal(await codeOf(verify(token)), 'INVALID_TOKEN')
})

await t.test('JWT_REQUIRE_EXP=false accepts a token without exp', async (t) => {
  const verify = await createTokenVerifier({ ...jwtConfig, requireExp: false })
  const verified = await verify(await signWithoutExp({ sessionId: 's1' }))
  t.same({ sub: verified.sub, sessionId: verified.sessionId, exp: verified.claims.exp }, { sub: 'alice', sessionId: 's1', exp: undefined })
  t.equal(await codeOf(verify(await sign({ sessionId: 's1' }, Math.floor(Date.now() / 1000) - 60))), 'TOKEN_EXPIRED', 'an exp that is there is still enforced')
})

await t.test('a cached token is still refused once its exp has passed', async (t) => {
  const verify = await createTokenVerifier(jwtConfig)
  const token = await sign({ sessionId: 's1' }, Math.floor(Date.now() / 1000) + 1)
  t.equal((await verify(token)).sessionId, 's1')
  t.equal((await verify(token)).sessionId, 's1', 'served again (from the cache)')
  await new Promise((resolve) => setTimeout(resolve, 2100))
  t.equal(await codeOf(verify(token)), 'TOKEN_EXPIRED')
})

await t.test('failures are never cached: a bad signature stays refused', async (t) => {
  const verify = await createTokenVerifier(jwtConfig)
  const forged = await sign({ sessionId: 's1' }, Math.floor(Date.now() / 1000) + 60, 'another-secret-of-thirty-two-characters!!')
  t.equal(await codeOf(verify(forged)), 'INVALID_TOKEN')
  t.equal(await codeOf(verify(forged)), 'INVALID_TOKEN')
})

await t.test('the cache can be disabled and verification is unchanged', async (t) => {
  const verify = await createTokenVerifier({ ...jwtConfig, cacheSize: 0 })
  const token = await sign({ sid: 's9', scope: 'gateway:publish other' }, Math.floor(Date.now() / 1000) + 60)
  const verified = await verify(token)
  t.same({ sub: verified.sub, sessionId: verified.sessionId, scopes: [...verified.scopes] }, { sub: 'alice', sessionId: 's9', scopes: ['gateway:publish', 'other'] })
})
