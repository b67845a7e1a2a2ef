// Builds @realtime-gateway/client (SPEC §6, §15): one ES module for bundlers and Node
// (dist/index.js), one minified ES module for <script type="module"> (the browser
// bundle) and the type declarations. The protocol files the SDK uses live with the
// server (src/protocol: codes, offsets, server frames; none imports anything) and are
// bundled in, so the package has no dependency and never pulls in TypeBox or server code.
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { relative } from 'node:path'
import { Buffer } from 'node:buffer'
import process from 'node:process'
import { URL, fileURLToPath } from 'node:url'
import { build, transform } from 'esbuild'

const here = fileURLToPath(new URL('.', import.meta.url))
rmSync(new URL('dist', import.meta.url), { recursive: true, force: true })

// The browser bundle takes of the code table (src/protocol/codes.ts, still the one
// source) only what the SDK reads: each code's `action` and `close`. The texts, HTTP
// statuses and names are the server's; the SDK shows the message the gateway sent.
const { codes } = await import(`data:text/javascript;base64,${Buffer.from((await transform(readFileSync(`${here}../../src/protocol/codes.ts`, 'utf8'), { loader: 'ts' })).code).toString('base64')}`)
const clientCodes = Object.fromEntries(Object.entries(codes).map(([code, { close, action }]) => [code, close === undefined ? { action } : { close, action }]))
const codeTable = {
  name: 'client-code-table',
  setup (build) {
    build.onLoad({ filter: /src[\\/]protocol[\\/]codes\.ts$/ }, () => ({ contents: `export const codes = ${JSON.stringify(clientCodes)}`, loader: 'js' }))
  }
}

const shared = { entryPoints: [`${here}src/index.ts`], bundle: true, format: 'esm', target: ['es2022'], metafile: true, legalComments: 'none', logLevel: 'warning' }
const results = await Promise.all([
  build({ ...shared, outfile: `${here}dist/index.js`, platform: 'neutral', sourcemap: true }),
  build({ ...shared, outfile: `${here}dist/realtime-gateway.min.js`, platform: 'browser', minify: true, plugins: [codeTable] })
])

// Anything from node_modules in a bundle would be a runtime dependency: fail the build.
const dependencies = results.flatMap((result) => Object.keys(result.metafile.inputs)).filter((input) => input.includes('node_modules'))
if (dependencies.length > 0) throw new Error(`the SDK bundle pulls in dependencies: ${dependencies.map((input) => relative(here, input)).join(', ')}`)

execFileSync(process.execPath, [fileURLToPath(import.meta.resolve('typescript/bin/tsc')), '-p', `${here}tsconfig.json`], { stdio: 'inherit' })
