import { SignJWT } from 'jose'

export interface DevTokenOptions {
  readonly secret: string
  readonly sub: string
  readonly sessionId?: string
  readonly sessionClaim?: string
  readonly scope?: string
  readonly channels?: readonly string[]
  /** Patterns of channels the user may publish to (SPEC §9). */
  readonly publish?: readonly string[]
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
  if (options.publish !== undefined) claims.publish = options.publish
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '1h')
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer)
  if (options.audience !== undefined) jwt.setAudience(options.audience)
  return await jwt.sign(new TextEncoder().encode(options.secret))
}

export interface DevChannelTokenOptions {
  readonly secret: string
  /** The user the token is for: the connection's `userId`. */
  readonly sub: string
  /** The exact channel it opens. */
  readonly channel: string
  /** `publish: true`: the connection may also publish to the channel. */
  readonly publish?: boolean
  readonly expiresIn?: string | number
  readonly issuer?: string
  readonly audience?: string
}

/** Mints an HS256 subscription token (SPEC §9), as an app's backend would, for development and tests. */
export async function mintChannelToken (options: DevChannelTokenOptions): Promise<string> {
  const jwt = new SignJWT({ channel: options.channel, ...(options.publish === undefined ? {} : { publish: options.publish }) })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(options.sub)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? '10m')
  if (options.issuer !== undefined) jwt.setIssuer(options.issuer)
  if (options.audience !== undefined) jwt.setAudience(options.audience)
  return await jwt.sign(new TextEncoder().encode(options.secret))
}
