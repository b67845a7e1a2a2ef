/**
 * Builds the React chat page: `node examples/react-chat/build.mjs` writes
 * examples/react-chat/dist/ (index.html and app.js, one ES module with React and
 * both workspace packages bundled in). dist/ is git-ignored.
 *
 * The packages come from the workspace the way an app gets them from the registry:
 * `@realtime-gateway/react` and `@realtime-gateway/client` resolve through
 * node_modules to their built dist/ (built here with `npm run build:packages` when
 * missing; run that again after changing them), and
 * `react`/`react-dom` to the React 19 that packages/react installs.
 */
import { build } from 'esbuild'
import { execFileSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync } from 'node:fs'
import process from 'node:process'
import { URL, fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = fileURLToPath(new URL('../../', import.meta.url))

/** Builds into `outdir` (the test builds into a temporary one); returns where, and the bundle's size. */
export async function buildChat ({ outdir = `${here}dist`, minify = true } = {}) {
  if (['client', 'react'].some((name) => !existsSync(`${root}packages/${name}/dist/index.js`))) {
    execFileSync('npm', ['run', 'build:packages'], { cwd: root, stdio: 'inherit' })
  }
  mkdirSync(outdir, { recursive: true })
  const result = await build({
    entryPoints: [`${here}app.jsx`],
    absWorkingDir: root,
    // One React for the page and the bindings: the React 19 that packages/react installs
    // (its dist/ imports `react` from there), not the React 18 hoisted to the root for the tests.
    alias: {
      react: './packages/react/node_modules/react',
      'react-dom': './packages/react/node_modules/react-dom'
    },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    jsx: 'automatic',
    minify,
    sourcemap: true,
    define: { 'process.env.NODE_ENV': JSON.stringify(minify ? 'production' : 'development') },
    outfile: `${outdir}/app.js`,
    metafile: true,
    logLevel: 'warning'
  })
  copyFileSync(`${here}index.html`, `${outdir}/index.html`)
  return { outdir, bytes: result.metafile.outputs[Object.keys(result.metafile.outputs).find((file) => file.endsWith('app.js')) ?? '']?.bytes ?? 0 }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const outdir = process.argv.find((arg) => arg.startsWith('--outdir='))?.slice('--outdir='.length)
  const built = await buildChat({ outdir, minify: !process.argv.includes('--dev') })
  const { bytes } = built
  process.stdout.write(`built ${built.outdir}/app.js (${(bytes / 1024).toFixed(1)} KB)\n`)
}
