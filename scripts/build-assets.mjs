// The build's non-TypeScript half (after `tsc`): the Lua scripts the Redis engine
// loads at runtime, and the client SDK bundled for browsers (ESM, one file).
import { cpSync } from 'node:fs'
import { relative } from 'node:path'
import { build } from 'esbuild'

cpSync('src/server/engine/lua', 'dist/server/engine/lua', { recursive: true })

const result = await build({
  entryPoints: ['packages/client/src/index.ts'],
  outfile: 'dist/browser/realtime-gateway.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning'
})

// SPEC §6: the SDK has zero runtime dependencies. Anything from node_modules in the
// bundle would be one, so it fails the build.
const dependencies = Object.keys(result.metafile.inputs).filter((input) => input.includes('node_modules'))
if (dependencies.length > 0) {
  throw new Error(`the browser bundle pulls in dependencies: ${dependencies.map((input) => relative('.', input)).join(', ')}`)
}
