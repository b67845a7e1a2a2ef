import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

// Runs the real entry point in child processes (through tsx). Its coverage is left out
// (test/coverage-map.js): tsx's source maps do not merge with the test processes' ones.
const root = fileURLToPath(new URL('../../', import.meta.url))

void t.test('the process refuses to boot with one line on stderr and exit code 1', async (t) => {
  const dir = t.testdir()
  async function boot (env: Record<string, string>): Promise<{ code: number | null, stdout: string, stderr: string }> {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts'], {
      cwd: root,
      // A clean environment: nothing inherited can make the configuration valid.
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dir, DEV_SECRET_FILE: `${dir}/.dev-secret`, ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 30_000)
    const [code] = await once(child, 'exit') as [number | null]
    clearTimeout(timer)
    return { code, stdout, stderr }
  }

  const badPort = await boot({ PORT: 'abc' })
  t.equal(badPort.code, 1)
  t.equal(badPort.stderr, 'Invalid configuration: PORT must be integer\n', 'exactly one line, no stack trace')
  t.equal(badPort.stdout, '')

  const production = await boot({ NODE_ENV: 'production' })
  t.equal(production.code, 1)
  t.equal(production.stderr, 'Invalid configuration: REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES is required when NODE_ENV=production (the embedded engine serves one instance only)\n')
  t.equal(production.stdout, '')

  const noSecret = await boot({ NODE_ENV: 'production', REDIS_URL: 'redis://127.0.0.1:1', ALLOWED_ORIGINS: '*' })
  t.equal(noSecret.code, 1)
  t.equal(noSecret.stderr, 'Invalid configuration: JWT_SECRET or JWT_JWKS_URL is required when NODE_ENV=production\n')
})
