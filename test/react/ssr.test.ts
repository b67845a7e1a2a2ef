import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { bundle, REACT_VERSIONS } from './bundle.js'

// SSR-safe (issue 11): nothing in @realtime-gateway/react touches `window` or `document`
// at import, and rendering on a server builds no client and opens no socket.
const dir = mkdtempSync(join(tmpdir(), 'rg-react-ssr-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

for (const version of REACT_VERSIONS) {
  await t.test(`React ${version}: the package imports and renders in Node with no window`, async (t) => {
    const file = join(dir, `ssr-${version}.mjs`)
    writeFileSync(file, await bundle(fileURLToPath(new URL('./ssr-app.ts', import.meta.url)), version, 'node'))
    // A separate process: nothing this test process loaded can stand in for a browser global.
    const child = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 })
    t.equal(child.status, 0, `exits 0${child.stderr === '' ? '' : `: ${child.stderr}`}`)
    const result = JSON.parse(child.stdout) as { reactVersion: string, exports: string[], html: string, globals: Record<string, string> }
    t.match(result.reactVersion, new RegExp(`^${version}\\.`), `React ${version}`)
    t.same(result.globals, { window: 'undefined', document: 'undefined' }, 'no browser globals')
    t.same(result.exports, ['RealtimeProvider', 'applyPresenceChange', 'useChannel', 'useConnectionStatus', 'usePresence', 'usePublish', 'useRealtime', 'useSend'], 'the provider, the six hooks and the presence reducer')
    t.match(result.html, /<p data-send="function" data-publish="function">closed\/idle\/idle<\/p>/, 'server snapshot: closed, channel and presence idle')
  })
}

await t.test('the package manifest: zero dependencies, react and the client as peers, only dist shipped', async (t) => {
  const manifest = JSON.parse(readFileSync(new URL('../../packages/react/package.json', import.meta.url), 'utf8')) as Record<string, unknown>
  t.match(manifest, {
    name: '@realtime-gateway/react',
    type: 'module',
    sideEffects: false,
    files: ['dist'],
    exports: { '.': { types: './dist/index.d.ts', import: './dist/index.js' } },
    peerDependencies: { react: '>=18', '@realtime-gateway/client': String }
  })
  t.equal(manifest.dependencies, undefined, 'no dependencies')
  const root = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  t.equal((manifest.peerDependencies as Record<string, string>)['@realtime-gateway/client'], root.version, 'the client peer is the same version')
})
