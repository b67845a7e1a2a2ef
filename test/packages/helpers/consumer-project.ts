/**
 * A fresh app that installs @realtime-gateway/client and @realtime-gateway/react from
 * their `npm pack` tarballs, exactly as it would from the registry (SPEC §15, issue 11):
 * nothing of the repo is linked, aliased or mapped in. One per test file, in
 * os.tmpdir(), removed when the file ends; the install is the slow part.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { projectRoot } from '../../helpers/build.js'

interface Teardown { teardown (fn: () => unknown): void }

export const PACKAGES = ['client', 'react'] as const
export type PackageName = typeof PACKAGES[number]

/** What `npm pack --json` reports for one tarball. */
export interface PackedTarball {
  readonly name: string
  /** Absolute path of the .tgz. */
  readonly path: string
  /** Bytes of the .tgz. */
  readonly size: number
  readonly unpackedSize: number
  /** Paths inside the package, sorted. */
  readonly files: readonly string[]
}

export interface ConsumerProject {
  /** The app's directory; its node_modules holds what `npm install` put there. */
  readonly dir: string
  readonly tarballs: Readonly<Record<PackageName, PackedTarball>>
  /** The versions installed beside the packages: the ones the repo itself tests with. */
  readonly versions: Readonly<Record<'ws' | 'react' | 'react-dom' | '@types/react', string>>
  /** Where an installed package lives: `<dir>/node_modules/<name>`. */
  installed (name: string): string
}

export interface Output { readonly stdout: string, readonly stderr: string }

/**
 * Runs a command to completion within `timeoutMs` (then SIGKILL): its output, or an
 * error carrying the output. npm's own `npm_*` variables (set when this runs under
 * `npm test`) are not passed on, so a child npm acts as in a fresh shell.
 */
export async function exec (command: string, args: readonly string[], options: { cwd: string, timeoutMs: number, env?: Record<string, string> }): Promise<Output> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') || ['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig'].includes(name)))
  return await new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, timeout: options.timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, env: { ...inherited, ...options.env } }, (error, stdout, stderr) => {
      if (error === null) resolve({ stdout, stderr })
      else reject(new Error(`${command} ${args.join(' ')} failed (${error.killed ? `killed after ${options.timeoutMs} ms` : `exit ${String(error.code)}`}):\n${stdout}\n${stderr}`))
    })
  })
}

/** The version of `name` that `fromPackage` (a directory in the repo) resolves. */
function versionFrom (fromPackage: string, name: string): string {
  const require = createRequire(join(projectRoot, fromPackage, 'package.json'))
  return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string }).version
}

function newestChange (path: string): number {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(0, ...readdirSync(path).map((name) => newestChange(join(path, name))))
}

/**
 * The tarballs are packed from the built dist/ (`npm test` builds first). The packages'
 * `prepack` would rebuild them, but that empties dist/ while other test files read it,
 * so packing runs with --ignore-scripts and this rebuilds first when dist/ is missing
 * or older than a source (a test file run on its own after an edit).
 */
async function buildPackagesIfStale (): Promise<void> {
  const sources = Math.max(newestChange(join(projectRoot, 'packages/client/src')), newestChange(join(projectRoot, 'packages/react/src')),
    ...['codes', 'offsets', 'server-frames'].map((name) => newestChange(join(projectRoot, `src/protocol/${name}.ts`))))
  const built = PACKAGES.map((name) => join(projectRoot, `packages/${name}/dist/index.js`))
  const stale = built.some((file) => { try { return statSync(file).mtimeMs < sources } catch { return true } })
  if (stale) await exec('npm', ['run', 'build:packages'], { cwd: projectRoot, timeoutMs: 180_000 })
}

/** Every file under `dir`, relative to it, sorted. */
export function filesUnder (dir: string): string[] {
  const walk = (path: string): string[] => statSync(path).isDirectory() ? readdirSync(path).flatMap((name) => walk(join(path, name))) : [relative(dir, path)]
  return walk(dir).sort()
}

export async function consumerProject (t: Teardown): Promise<ConsumerProject> {
  await buildPackagesIfStale()
  const dir = await mkdtemp(join(tmpdir(), 'rtgw-consumer-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const tarballDir = join(dir, 'tarballs')
  const app = join(dir, 'app')
  await mkdir(tarballDir)
  await mkdir(app)

  const packed = await exec('npm', ['pack', '--workspace', 'packages/client', '--workspace', 'packages/react', '--pack-destination', tarballDir, '--ignore-scripts', '--json'], { cwd: projectRoot, timeoutMs: 120_000 })
  const reports = JSON.parse(packed.stdout) as Array<{ name: string, filename: string, size: number, unpackedSize: number, files: Array<{ path: string }> }>
  const tarballOf = (name: PackageName): PackedTarball => {
    const report = reports.find((entry) => entry.name === `@realtime-gateway/${name}`)
    if (report === undefined) throw new Error(`npm pack made no tarball for @realtime-gateway/${name}`)
    return { name: report.name, path: join(tarballDir, report.filename), size: report.size, unpackedSize: report.unpackedSize, files: report.files.map((file) => file.path).sort() }
  }
  const tarballs = { client: tarballOf('client'), react: tarballOf('react') }

  const versions = {
    ws: versionFrom('.', 'ws'),
    react: versionFrom('packages/react', 'react'),
    'react-dom': versionFrom('packages/react', 'react-dom'),
    '@types/react': versionFrom('packages/react', '@types/react')
  }
  await writeFile(join(app, 'package.json'), `${JSON.stringify({ name: 'rtgw-consumer-app', version: '1.0.0', private: true, type: 'module' }, null, 2)}\n`)
  // The npm cache has all of these after the root `npm ci`; with network, npm may still fetch.
  await exec('npm', ['install', tarballs.client.path, tarballs.react.path, ...Object.entries(versions).map(([name, version]) => `${name}@${version}`),
    '--prefer-offline', '--no-audit', '--no-fund', '--loglevel', 'error'], { cwd: app, timeoutMs: 180_000 })

  return { dir: app, tarballs, versions, installed: (name) => join(app, 'node_modules', name) }
}

/** Writes `files` (path → text) into the app. */
export async function writeFiles (project: ConsumerProject, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(project.dir, path, '..'), { recursive: true })
    await writeFile(join(project.dir, path), text)
  }
}
