import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const projectRoot = fileURLToPath(new URL('../../', import.meta.url))

/**
 * `npm test` builds first (pretest); a test file run on its own builds here when
 * dist/ is missing, so it always runs what `npm start` and the image would run.
 */
export function ensureBuilt (): void {
  if (!existsSync(new URL('../../dist/server/main.js', import.meta.url)) || !existsSync(new URL('../../dist/browser/realtime-gateway.js', import.meta.url))) {
    execFileSync('npm', ['run', 'build'], { cwd: projectRoot, stdio: 'ignore' })
  }
  if (!existsSync(new URL('../../packages/client/dist/index.js', import.meta.url)) || !existsSync(new URL('../../packages/react/dist/index.js', import.meta.url))) {
    execFileSync('npm', ['run', 'build:packages'], { cwd: projectRoot, stdio: 'ignore' })
  }
}
