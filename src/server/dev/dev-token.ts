import { SignJWT } from 'jose'

export interface DevTokenOptions {
  readonly secret: string
  readonly sub: string
  readonly sessionId?: string
  readonly sessionClaim?: string
  readonly scope?: string
  readonly channels?: readonly string[]
  readonly expiresIn?: string
  readonly issuer?: string
  readonly audience?: string
}

/** Mints an HS256 token for development and tests (SPEC §8). */
export async function mintDevToken (options: DevTokenOptions): Promise<string> {
  const claims: Record<string, unknown> = {}
  if (options.sessionId !== undefined) claims[options.sessionClaim ?? 'sessionId'] = options.sessionId
  if (options.scope !== undefined) claims.scope = options.scope
  if (options.channels !== undefined) claims.channels = options.channels
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer)
  if (options.audience !== undefined) jwt.setAudience(options.audience)
  return await jwt.sign(new TextEncoder().encode(options.secret))
}
