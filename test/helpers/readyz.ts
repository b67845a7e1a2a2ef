/**
 * `/readyz` bodies (SPEC §3) with each check's `since` taken out, so tests can assert the
 * rest exactly: `{ status, checks: { redis: 'ok' | 'fail: ECONNREFUSED', ... }, failing? }`.
 * Throws when a `since` is not an ISO time, so that part is checked too.
 */
export interface ReadyzShape {
  readonly status: string
  readonly checks: Record<string, string>
  readonly failing?: readonly string[]
}

interface CheckBody { status: string, reason?: string, since: string }

export function readyzShape (body: unknown): ReadyzShape {
  const { status, checks, failing } = body as { status: string, checks: Record<string, CheckBody>, failing?: string[] }
  const flat: Record<string, string> = {}
  for (const [name, check] of Object.entries(checks)) {
    if (new Date(check.since).toISOString() !== check.since) throw new Error(`${name}.since is not an ISO time: ${check.since}`)
    flat[name] = check.reason === undefined ? check.status : `${check.status}: ${check.reason}`
  }
  return failing === undefined ? { status, checks: flat } : { status, checks: flat, failing }
}

export async function readyz (baseUrl: string): Promise<{ status: number, body: ReadyzShape }> {
  const response = await fetch(`${baseUrl}/readyz`)
  return { status: response.status, body: readyzShape(await response.json()) }
}
