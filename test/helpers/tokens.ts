import { mintDevToken } from '../../src/server/dev/dev-token.js'

export const TEST_SECRET = 'test-secret-of-at-least-thirty-two-characters'

export async function userToken (sub = 'alice', sessionId = 's1', extra: { expiresIn?: string, secret?: string, issuer?: string, audience?: string, sessionClaim?: string } = {}): Promise<string> {
  return await mintDevToken({ secret: extra.secret ?? TEST_SECRET, sub, sessionId, ...extra })
}

export async function tokenWithoutSession (sub = 'alice'): Promise<string> {
  return await mintDevToken({ secret: TEST_SECRET, sub })
}
