import type { Gateway } from './gateway.js'
import { mintDevToken } from '../../src/server/dev/dev-token.js'
import { TEST_SECRET } from './tokens.js'

export async function serviceToken (scope = 'gateway:publish'): Promise<string> {
  return await mintDevToken({ secret: TEST_SECRET, sub: 'backend', scope })
}

export async function publish (gateway: Gateway, body: unknown, token?: string): Promise<{ status: number, body: Record<string, unknown> }> {
  const response = await fetch(`${gateway.baseUrl}/v1/publish`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token ?? await serviceToken()}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: await response.json() as Record<string, unknown> }
}
