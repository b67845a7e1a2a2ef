import type { FastifyRequest } from 'fastify'
import { bearerToken, type VerifiedToken } from '../auth/token-verifier.js'
import { GatewayError } from '../errors.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified bearer token; set by `authenticateUser` before the handler runs. */
    token: VerifiedToken | null
  }
}

export interface UserToken extends VerifiedToken {
  readonly sessionId: string
}

/** preHandler: a user token with a session claim (SPEC §3 MISSING_SESSION). */
export async function authenticateUser (request: FastifyRequest): Promise<void> {
  const token = await request.server.verifyToken(bearerToken(request.headers.authorization))
  if (token.sessionId === undefined) throw new GatewayError('MISSING_SESSION')
  request.token = token
}

function hasSession (token: VerifiedToken | null): token is UserToken {
  return token?.sessionId !== undefined
}

/** The user token of a request that passed `authenticateUser`. */
export function userTokenOf (request: FastifyRequest): UserToken {
  const token = request.token
  if (!hasSession(token)) throw new GatewayError('MISSING_SESSION')
  return token
}

/** preHandler factory: a service token carrying `scope` (SPEC §3 backend routes). */
export function requireScope (scope: string) {
  return async function authenticateService (request: FastifyRequest): Promise<void> {
    const token = await request.server.verifyToken(bearerToken(request.headers.authorization))
    if (!token.scopes.has(scope)) throw new GatewayError('INSUFFICIENT_SCOPE', { message: `Token lacks the ${scope} scope` })
    request.token = token
  }
}
