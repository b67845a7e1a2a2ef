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

/** POST /v1/disconnect (SPEC §3) with a `gateway:disconnect` service token. */
export async function disconnect (gateway: Gateway, body: Record<string, unknown>): Promise<{ status: number, body: Record<string, unknown>, headers: Headers }> {
  const response = await fetch(`${gateway.baseUrl}/v1/disconnect`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await serviceToken('gateway:disconnect')}`, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: response.status, body: await response.json() as Record<string, unknown>, headers: response.headers }
}
