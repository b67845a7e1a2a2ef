import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'

/**
 * The development JWT secret (SPEC §8), shared between the running gateway and
 * `npm run token` through a git-ignored file (DEV_SECRET_FILE). Whichever starts
 * first creates it; it is never used when NODE_ENV=production.
 */
export function readOrCreateDevSecret (path: string): string {
  try {
    return readFileSync(path, 'utf8').trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const secret = randomBytes(32).toString('base64url')
  try {
    // 'wx' fails if another process created it meanwhile: then theirs wins.
    writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' })
    return secret
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    return readFileSync(path, 'utf8').trim()
  }
}
