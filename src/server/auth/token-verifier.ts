import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload, type JWTVerifyGetKey, type JWTVerifyOptions } from 'jose'
import { createSecretKey, type KeyObject } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { GatewayError } from '../errors.js'
import { channelPatternsOf } from '../channels/channel-access.js'
import type { JwtConfig } from '../config.js'

/** Asymmetric algorithms accepted from a JWKS; the secret only ever verifies HS256. */
const JWKS_ALGORITHMS = ['RS256', 'ES256', 'EdDSA'] as const

/** A verified bearer token, reduced to what the gateway needs. */
export interface VerifiedToken {
  readonly sub: string
  /** Absent on service tokens; user routes require it (MISSING_SESSION). */
  readonly sessionId?: string
  readonly scopes: ReadonlySet<string>
  /** Glob patterns of channels the user may join (the `channels` claim). */
  readonly channels: readonly string[]
  /** Patterns of channels the user may publish to (the `publish` claim, SPEC §9). */
  readonly publish: readonly string[]
  readonly claims: JWTPayload
}

class KeySetUnavailableError extends Error {
  override name = 'KeySetUnavailableError'
}

export type TokenVerifier = (token: string) => Promise<VerifiedToken>

/**
 * Whether `createRemoteJWKSet` failed because of the key set's endpoint rather than
 * the token. jose 5 (runtime/fetch_jwks.js) throws the base `JOSEError` itself, no
 * subclass, for a non-200 answer and for a body that is not JSON; `JWKSTimeout` when
 * it does not answer in time; `JWKSInvalid` for JSON that is no key set; and a
 * refused or reset connection surfaces as Node's own error, no JOSEError at all. An
 * unknown `kid` (`JWKSNoMatchingKey`) or a bad signature stays the token's fault.
 */
function keySetUnavailable (err: unknown): boolean {
  if (!(err instanceof errors.JOSEError)) return true
  return err.code === errors.JOSEError.code || err instanceof errors.JWKSTimeout || err instanceof errors.JWKSInvalid
}

/** SPEC §3: a token without `exp` would be valid forever; refused unless JWT_REQUIRE_EXP=false. */
export const MISSING_EXP_MESSAGE = 'Token has no exp claim; tokens must expire'

function scopesOf (claims: JWTPayload): Set<string> {
  const scope = claims.scope ?? claims.scp
  if (typeof scope === 'string') return new Set(scope.split(' ').filter(Boolean))
  if (Array.isArray(scope)) return new Set(scope.filter((entry): entry is string => typeof entry === 'string'))
  return new Set()
}

/**
 * The keys and checks every JWT the gateway accepts is verified with: user tokens and
 * subscription tokens (SPEC §9) share them, and one remote JWKS set (one cache).
 */
export interface JwtKeys {
  readonly getKey: JWTVerifyGetKey
  readonly options: JWTVerifyOptions
}

/** Prepares the keys once: the HS256 secret as a KeyObject, the remote JWKS as one cached set. */
export function jwtKeysOf (config: JwtConfig): JwtKeys {
  const secretKey: KeyObject | undefined = config.secret === undefined ? undefined : createSecretKey(Buffer.from(config.secret, 'utf8'))
  const remoteKeys = config.jwksUrl === undefined ? undefined : createRemoteJWKSet(new URL(config.jwksUrl))

  const algorithms: string[] = []
  if (secretKey !== undefined) algorithms.push('HS256')
  if (remoteKeys !== undefined) algorithms.push(...JWKS_ALGORITHMS)

  // The header's algorithm picks the key; jose still enforces the allow-list.
  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256' && secretKey !== undefined) return secretKey
    if (remoteKeys !== undefined) {
      try {
        return await remoteKeys(header, token)
      } catch (err) {
        // A key set that cannot be fetched is not the caller's fault: 503, not 401.
        if (keySetUnavailable(err)) throw new KeySetUnavailableError('key set unavailable', { cause: err })
        throw err
      }
    }
    throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed')
  }

  const options = {
    algorithms,
    issuer: config.issuer,
    audience: config.audience,
    clockTolerance: config.clockToleranceSeconds,
    requiredClaims: config.requireExp ? ['exp'] : []
  }
  return { getKey, options }
}

/** jose's failure as the §3 code: expired, keys unavailable (503), or invalid. */
export function tokenErrorOf (err: unknown): GatewayError {
  if (err instanceof errors.JWTExpired) return new GatewayError('TOKEN_EXPIRED')
  if (err instanceof KeySetUnavailableError) return new GatewayError('AUTH_UNAVAILABLE', { retryAfterSeconds: 1, cause: err })
  if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'exp' && err.reason === 'missing') {
    return new GatewayError('INVALID_TOKEN', { message: MISSING_EXP_MESSAGE })
  }
  return new GatewayError('INVALID_TOKEN')
}

/**
 * Builds the bearer-token verifier (jose 5). Keys are prepared once (jwtKeysOf), so
 * the hot path only verifies a signature and the claims. jose 5's Node build verifies
 * with node:crypto; jose 6 only has WebCrypto, whose asynchronous verify cost
 * 1.3-1.8x the CPU per token on Node 20 (docs/benchmarks.md).
 */
export async function createTokenVerifier (config: JwtConfig, keys: JwtKeys = jwtKeysOf(config)): Promise<TokenVerifier> {
  const { getKey, options } = keys

  // Verified tokens are remembered (as Envoy's jwt_authn does): a client presents the
  // same JWT for every reconnect, and a reconnect storm is when the CPU matters most.
  // Only successes are cached, never past the token's own `exp`.
  const cache = config.cacheSize > 0
    ? new LRUCache<string, VerifiedToken>({ max: config.cacheSize, ttl: config.cacheTtlSeconds * 1000 })
    : undefined

  async function verifyAndRemember (token: string): Promise<VerifiedToken> {
    const cached = cache?.get(token)
    if (cached !== undefined) {
      const exp = cached.claims.exp
      if (exp === undefined || exp * 1000 > Date.now()) return cached
      cache?.delete(token)
    }
    const verified = await verifyToken(token)
    cache?.set(token, verified)
    return verified
  }

  async function verifyToken (token: string): Promise<VerifiedToken> {
    let claims: JWTPayload
    try {
      ({ payload: claims } = await jwtVerify(token, getKey, options))
    } catch (err) {
      throw tokenErrorOf(err)
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') throw new GatewayError('INVALID_TOKEN', { message: 'Token has no subject' })
    const session = claims[config.sessionClaim] ?? claims.sid
    return {
      sub: claims.sub,
      sessionId: typeof session === 'string' && session !== '' ? session : undefined,
      scopes: scopesOf(claims),
      channels: channelPatternsOf(claims.channels),
      publish: channelPatternsOf(claims.publish),
      claims
    }
  }

  return verifyAndRemember
}

/** Extracts the token of an `Authorization: Bearer` header. */
export function bearerToken (authorization: string | undefined): string {
  if (authorization === undefined) throw new GatewayError('MISSING_TOKEN')
  const match = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization)
  if (match?.[1] === undefined) throw new GatewayError('MISSING_TOKEN', { message: 'Authorization header must be "Bearer <token>"' })
  return match[1]
}
