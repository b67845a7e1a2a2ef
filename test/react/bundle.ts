import { build, type Plugin } from 'esbuild'
import { fileURLToPath } from 'node:url'

/** The React versions the bindings are tested with (issue 11): 18 through root aliases, 19 as the package's own devDependency. */
export const REACT_VERSIONS = [18, 19] as const
export type ReactVersion = typeof REACT_VERSIONS[number]

const root = fileURLToPath(new URL('../../', import.meta.url))
const packageDir = `${root}packages/react`

/**
 * Every `react`, `react-dom` and `react-dom/*` import in the bundle (the package's, the
 * app's and react-dom's own) goes to one version, with its `exports` conditions
 * honoured: 18 is `react-18`/`react-dom-18` at the root, 19 is what packages/react installs.
 */
function reactVersion (version: ReactVersion): Plugin {
  return {
    name: 'react-version',
    setup (build) {
      build.onResolve({ filter: /^react(-dom)?(\/.*)?$/ }, async (args) => {
        if ((args.pluginData as { pinned?: boolean } | undefined)?.pinned === true) return undefined
        const [, dom = '', subpath = ''] = /^react(-dom)?(\/.*)?$/.exec(args.path) ?? []
        const path = version === 18 ? `react${dom}-18${subpath}` : args.path
        const resolved = await build.resolve(path, { kind: args.kind, resolveDir: version === 18 ? root : packageDir, pluginData: { pinned: true } })
        return resolved.errors.length > 0 ? { errors: resolved.errors } : { path: resolved.path }
      })
    }
  }
}

/**
 * `@realtime-gateway/client` is its workspace's source (as packages/react/tsconfig.json
 * maps it); `@realtime-gateway/react` is the
 * package's source, so the tests need no build first.
 */
const alias = {
  '@realtime-gateway/client': `${root}packages/client/src/index.ts`,
  '@realtime-gateway/react': `${packageDir}/src/index.ts`
}

/**
 * One ES module: `entry` with React `version`. Development builds for the browser, so
 * StrictMode really mounts twice; the production build for Node (SSR).
 */
export async function bundle (entry: string, version: ReactVersion, platform: 'browser' | 'node'): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    write: false,
    format: 'esm',
    platform,
    target: 'es2022',
    alias,
    plugins: [reactVersion(version)],
    define: { 'process.env.NODE_ENV': JSON.stringify(platform === 'browser' ? 'development' : 'production') },
    // react-dom/server's CommonJS requires Node built-ins; an ESM bundle needs a `require` for them.
    banner: platform === 'node' ? { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" } : {},
    logLevel: 'silent'
  })
  const output = result.outputFiles?.[0]
  if (output === undefined) throw new Error(`esbuild produced nothing for ${entry}`)
  return output.text
}
