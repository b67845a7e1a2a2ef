import { execFileSync } from 'node:child_process'
import { mintDevToken } from '../../src/server/dev/dev-token.js'

/** Fixed HS256 secret shared by the token minting and the gateway child. */
export const JWT_SECRET = 'bench-secret-of-at-least-thirty-two-characters!'
export const WS_PATH = '/ws'

/** One token per distinct user (`sub`) and session. */
export async function mintTokens (count: number): Promise<string[]> {
  const tokens: string[] = []
  for (let i = 0; i < count; i++) {
    const id = String(i).padStart(5, '0')
    tokens.push(await mintDevToken({ secret: JWT_SECRET, sub: `bench-user-${id}`, sessionId: `bench-session-${id}`, expiresIn: '2h' }))
  }
  return tokens
}

/**
 * The gateway child's environment: production mode, Redis engine, the fixed
 * secret, rate limits far above what a run can reach (they still run: two Redis
 * round trips per ticket, as in production).
 */
export function gatewayEnv (redisUrl: string, logLevel: string, jwtCacheSize = 10_000): Record<string, string> {
  return {
    NODE_ENV: 'production',
    REDIS_URL: redisUrl,
    JWT_SECRET,
    ALLOWED_ORIGINS: 'http://127.0.0.1',
    LOG_LEVEL: logLevel,
    WS_PATH,
    TICKET_RATE_LIMIT_PER_USER: '1000000000',
    AUTH_FAILURE_LIMIT_PER_IP: '1000000000',
    JWT_CACHE_SIZE: String(jwtCacheSize)
  }
}

export function fmt (value: number | undefined, digits = 0): string {
  return value === undefined || Number.isNaN(value) ? '-' : value.toFixed(digits)
}

/** A Markdown table, the first `leftColumns` columns left-aligned, the others right-aligned. */
export function table (headers: readonly string[], rows: ReadonlyArray<readonly string[]>, leftColumns = 1): string {
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const line = (cells: readonly string[]): string => `| ${cells.map((cell, i) => i < leftColumns ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)).join(' | ')} |`
  const rule = `|${widths.map((width, i) => i < leftColumns ? `:${'-'.repeat(width + 1)}` : `${'-'.repeat(width + 1)}:`).join('|')}|`
  return [line(headers), rule, ...rows.map(line)].join('\n')
}

export function median (values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

export const log = (line: string): void => { process.stderr.write(`${line}\n`) }

/**
 * The commit the figures belong to, and whether src/ or package.json differ from it.
 * Read at the start and the end of a run: a change in between means the servers may
 * have loaded a different tree than the one named.
 */
export function gitRevision (): string {
  try {
    const git = (...args: string[]): string => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const head = git('rev-parse', '--short', 'HEAD')
    const dirty = git('status', '--porcelain', '--', 'src', 'package.json') !== ''
    return dirty ? `${head} + uncommitted src changes` : head
  } catch {
    return 'unknown'
  }
}
