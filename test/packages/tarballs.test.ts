import t from 'tap'
import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { projectRoot } from '../helpers/build.js'
import { consumerProject, exec, filesUnder, writeFiles, type PackageName } from './helpers/consumer-project.js'
import { typeErrorSource, typedClientSource, typedReactSource, tsconfigFor } from './helpers/consumer-sources.js'

// Issue 11, point 2: what `npm install` of the packed tarballs gives an app. The
// file lists, the `exports` targets, the dependencies, the sizes, and the types as a
// strict TypeScript app sees them under both module resolutions a bundler or Node uses.
const project = await consumerProject(t)

/** Bytes. The browser bundle's budget is issue 11's; the tarballs' leave room for growth. */
const BUDGET = { browserBundle: 25 * 1024, tarball: { client: 72 * 1024, react: 24 * 1024 } }

interface Manifest {
  readonly name: string
  readonly exports: Record<string, string | Record<string, string>>
  readonly types?: string
  readonly dependencies?: Record<string, string>
  readonly peerDependencies?: Record<string, string>
  readonly optionalDependencies?: Record<string, string>
  readonly bundleDependencies?: unknown
  readonly scripts?: Record<string, string>
}
function installedManifest (name: PackageName): Manifest {
  return JSON.parse(readFileSync(join(project.installed(`@realtime-gateway/${name}`), 'package.json'), 'utf8')) as Manifest
}

/** The sources' basenames (no extension) in a repo folder. */
function modules (folder: string): string[] {
  return readdirSync(join(projectRoot, folder)).filter((name) => /\.tsx?$/.test(name)).map((name) => name.replace(/\.tsx?$/, ''))
}

/**
 * What each tarball must hold, exactly: the built files, one declaration per source,
 * the manifest and the README, and nothing else (no sources, tests or tsconfigs).
 * The client's maps embed their sources (checked below), the React package's too.
 */
const expected: Record<PackageName, string[]> = {
  client: [
    'README.md', 'package.json', 'dist/index.js', 'dist/index.js.map', 'dist/realtime-gateway.min.js',
    ...modules('packages/client/src').map((name) => `dist/types/packages/client/src/${name}.d.ts`),
    // The dependency-free protocol files the SDK bundles in (SPEC §15).
    ...['codes', 'offsets', 'server-frames'].map((name) => `dist/types/src/protocol/${name}.d.ts`)
  ].sort(),
  react: [
    'README.md', 'package.json',
    ...modules('packages/react/src').flatMap((name) => [`dist/${name}.js`, `dist/${name}.js.map`, `dist/${name}.d.ts`])
  ].sort()
}

for (const name of ['client', 'react'] as const) {
  await t.test(`@realtime-gateway/${name}: the tarball holds exactly the built files, and npm installs exactly those`, async (t) => {
    const tarball = project.tarballs[name]
    t.same(tarball.files, expected[name], 'the packed file list')
    t.same(filesUnder(project.installed(`@realtime-gateway/${name}`)), expected[name], 'the installed package')
    t.notOk(tarball.files.some((file) => /(^|\/)(src|test)\/.*\.tsx?$/.test(file) && !file.endsWith('.d.ts')), 'no TypeScript sources')
    for (const map of tarball.files.filter((file) => file.endsWith('.map'))) {
      const parsed = JSON.parse(readFileSync(join(project.installed(`@realtime-gateway/${name}`), map), 'utf8')) as { sources: string[], sourcesContent?: Array<string | null> }
      t.ok(parsed.sourcesContent?.length === parsed.sources.length && parsed.sourcesContent.every((text) => typeof text === 'string'), `${map} embeds its sources (they are not shipped)`)
    }
  })

  await t.test(`@realtime-gateway/${name}: every exports and types target exists in the installed package`, async (t) => {
    const manifest = installedManifest(name)
    const targets = Object.values(manifest.exports).flatMap((target) => typeof target === 'string' ? [target] : Object.values(target))
    if (manifest.types !== undefined) targets.push(manifest.types)
    t.ok(targets.length >= 3, `${targets.length} targets`)
    for (const target of new Set(targets)) t.ok(existsSync(join(project.installed(`@realtime-gateway/${name}`), target)), `${target} exists`)
    t.equal(manifest.scripts?.prepack, 'npm run build', 'npm pack and npm publish build first')
  })
}

await t.test('dependencies: none for either package; the React bindings peer on react and the client only', async (t) => {
  const client = installedManifest('client')
  const react = installedManifest('react')
  for (const manifest of [client, react]) {
    t.same(manifest.dependencies ?? {}, {}, `${manifest.name}: no dependencies`)
    t.same(manifest.optionalDependencies ?? {}, {}, `${manifest.name}: no optional dependencies`)
    t.equal(manifest.bundleDependencies, undefined, `${manifest.name}: nothing bundled in`)
  }
  t.equal(client.peerDependencies, undefined, 'the client has no peer dependencies')
  t.same(Object.keys(react.peerDependencies ?? {}).sort(), ['@realtime-gateway/client', 'react'], 'the React bindings peer on react and the client')
  t.equal(react.peerDependencies?.['@realtime-gateway/client'], '0.1.0', 'the client of the same version')
  // The app installed the packages, ws, react, react-dom and @types/react: nothing else came with them.
  const lock = JSON.parse(readFileSync(join(project.dir, 'package-lock.json'), 'utf8')) as { packages: Record<string, unknown> }
  const installed = Object.keys(lock.packages).filter((path) => path !== '').map((path) => path.replace(/^node_modules\//, '')).sort()
  t.same(installed, ['@realtime-gateway/client', '@realtime-gateway/react', '@types/react', 'csstype', 'react', 'react-dom', 'scheduler', 'ws'],
    'only the packages and what react, react-dom and @types/react bring')
})

await t.test('sizes: the minified browser bundle and the tarballs stay within budget', async (t) => {
  const bundle = readFileSync(join(project.installed('@realtime-gateway/client'), 'dist/realtime-gateway.min.js'))
  const gzip = gzipSync(bundle).length
  t.comment(`browser bundle ${bundle.length} bytes minified, ${gzip} gzip; tarballs: client ${project.tarballs.client.size} bytes (${project.tarballs.client.unpackedSize} unpacked), react ${project.tarballs.react.size} (${project.tarballs.react.unpackedSize} unpacked)`)
  t.ok(bundle.length <= BUDGET.browserBundle, `browser bundle ${bundle.length} ≤ ${BUDGET.browserBundle} bytes`)
  for (const name of ['client', 'react'] as const) {
    t.ok(project.tarballs[name].size <= BUDGET.tarball[name], `${name} tarball ${project.tarballs[name].size} ≤ ${BUDGET.tarball[name]} bytes`)
  }
})

await t.test('Node imports both entry points of the installed client, and the React bindings', async (t) => {
  await writeFiles(project, {
    'exports.mjs': `
      const sdk = await import('@realtime-gateway/client')
      const browser = await import('@realtime-gateway/client/browser')
      const react = await import('@realtime-gateway/react')
      console.log(JSON.stringify({ sdk: Object.keys(sdk).sort(), browser: Object.keys(browser).sort(), react: Object.keys(react).sort() }))
    `
  })
  const { stdout } = await exec(process.execPath, ['exports.mjs'], { cwd: project.dir, timeoutMs: 30_000 })
  const sdk = ['AuthenticationError', 'Backoff', 'ConnectionError', 'GatewayClientError', 'Poller', 'RealtimeClient', 'Subscriptions', 'TicketError', 'TicketManager']
  t.same(JSON.parse(stdout), { sdk, browser: sdk, react: ['RealtimeProvider', 'applyPresenceChange', 'useChannel', 'useConnectionStatus', 'usePresence', 'usePublish', 'useRealtime', 'useSend'] })
})

const tsc = join(projectRoot, 'node_modules/typescript/bin/tsc')

for (const resolution of ['bundler', 'node16'] as const) {
  await t.test(`a strict TypeScript app type-checks against the installed packages (moduleResolution ${resolution}, skipLibCheck false)`, async (t) => {
    const tsconfig = `tsconfig.${resolution}.json`
    await writeFiles(project, {
      [tsconfig]: tsconfigFor(resolution, ['typed/client.ts', 'typed/app.tsx']),
      'typed/client.ts': typedClientSource,
      'typed/app.tsx': typedReactSource
    })
    const { stdout } = await exec(process.execPath, [tsc, '-p', tsconfig, '--pretty', 'false'], { cwd: project.dir, timeoutMs: 120_000 })
    t.equal(stdout, '', 'zero errors')

    // The same check fails when the app gets a type wrong: it really reads the packages' types.
    const broken = `tsconfig.${resolution}.broken.json`
    await writeFiles(project, { [broken]: tsconfigFor(resolution, ['typed/broken.ts']), 'typed/broken.ts': typeErrorSource })
    const failure = await exec(process.execPath, [tsc, '-p', broken, '--pretty', 'false'], { cwd: project.dir, timeoutMs: 120_000 }).then(() => 'compiled', (err: Error) => err.message)
    t.match(failure, /typed\/broken\.ts\(\d+,\d+\): error TS2322: Type 'number' is not assignable to type 'string'/, 'a wrong option type is reported')
    t.match(failure, /typed\/broken\.ts\(\d+,\d+\): error TS2345: Argument of type '"no-such-event"' is not assignable/, 'an unknown event name is reported')
    const errors = failure.match(/error TS\d+/g) ?? []
    t.equal(errors.length, 2, 'only the two deliberate errors')
  })
}
