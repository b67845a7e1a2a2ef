import { jwtVerify, type JWTPayload } from 'jose'
import type { ChannelGrant } from '../channels/channel-access.js'
import { MISSING_EXP_MESSAGE, tokenErrorOf, type JwtKeys } from './token-verifier.js'

/**
 * Why a subscription token was refused. The client is told `CHANNEL_TOKEN_INVALID`
 * (or `AUTH_UNAVAILABLE` when the JWKS cannot be fetched: not the token's fault);
 * the reason labels the log line.
 */
export type ChannelTokenRejectReason = 'invalid' | 'expired' | 'missing_exp' | 'wrong_sub' | 'wrong_channel' | 'keys_unavailable'

export type ChannelTokenResult =
  | { readonly ok: true, readonly grant: ChannelGrant }
  | { readonly ok: false, readonly code: 'CHANNEL_TOKEN_INVALID' | 'AUTH_UNAVAILABLE', readonly reason: ChannelTokenRejectReason }

/** Checks a subscription token for one user and one channel; never throws. */
export type ChannelTokenVerifier = (token: string, expected: { readonly userId: string, readonly channel: string }) => Promise<ChannelTokenResult>

function refused (reason: ChannelTokenRejectReason): ChannelTokenResult {
  return { ok: false, code: reason === 'keys_unavailable' ? 'AUTH_UNAVAILABLE' : 'CHANNEL_TOKEN_INVALID', reason }
}

/**
 * Subscription tokens (SPEC §9): JWTs a backend signs with the same keys as user
 * tokens (the same secret or JWKS, issuer and audience), naming the user (`sub`) and
 * the exact channel (`channel`), with an `exp` always required (whatever
 * JWT_REQUIRE_EXP says: a token for a room must not be valid forever), and optionally
 * `publish: true`. They are not cached: each is presented once per subscribe.
 */
export function createChannelTokenVerifier (keys: JwtKeys): ChannelTokenVerifier {
  const options = { ...keys.options, requiredClaims: ['exp', 'sub'] }
  return async (token, expected) => {
    let claims: JWTPayload
    try {
      ({ payload: claims } = await jwtVerify(token, keys.getKey, options))
    } catch (err) {
      const error = tokenErrorOf(err)
      if (error.code === 'AUTH_UNAVAILABLE') return refused('keys_unavailable')
      if (error.code === 'TOKEN_EXPIRED') return refused('expired')
      return refused(error.message === MISSING_EXP_MESSAGE ? 'missing_exp' : 'invalid')
    }
    if (claims.sub !== expected.userId) return refused('wrong_sub')
    if (claims.channel !== expected.channel) return refused('wrong_channel')
    return { ok: true, grant: { channel: expected.channel, publish: claims.publish === true } }
  }
}
