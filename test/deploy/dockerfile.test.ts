import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils'
import { Copy, DockerfileParser, type Instruction } from 'dockerfile-ast'
import { dockerStages, dockerignored, dockerignoreRules, execForm, readText, root, stageEnv, type DockerStage } from './deploy-files.js'

/**
 * The Dockerfile (SPEC §7, issue 5 item 3): linted by dockerfile-utils (the validator
 * behind the VS Code Docker language server), then checked against the image's rules:
 * multi-stage, pinned LTS base, npm ci → build → production-only install, non-root,
 * exec-form CMD under tini, nothing but dist/, node_modules and package.json shipped.
 */

const dockerfile = readText('Dockerfile')
const stages = dockerStages(dockerfile)
const runtime = stages.at(-1)!

// Every optional rule raised to an error: a warning is a failure here too.
const STRICT: ValidatorSettings = {
  deprecatedMaintainer: ValidationSeverity.ERROR,
  directiveCasing: ValidationSeverity.ERROR,
  emptyContinuationLine: ValidationSeverity.ERROR,
  instructionCasing: ValidationSeverity.ERROR,
  instructionCmdMultiple: ValidationSeverity.ERROR,
  instructionEntrypointMultiple: ValidationSeverity.ERROR,
  instructionHealthcheckMultiple: ValidationSeverity.ERROR,
  instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
  instructionWorkdirRelative: ValidationSeverity.ERROR
}

function lint (text: string): string[] {
  return validate(text, STRICT).map((diagnostic) => `line ${diagnostic.range.start.line + 1}: ${diagnostic.message}`)
}

function of (stage: DockerStage, keyword: string): Instruction[] {
  return stage.instructions.filter((instruction) => instruction.getKeyword() === keyword)
}

function runs (stage: DockerStage): string[] {
  return of(stage, 'RUN').map((instruction) => (instruction.getArgumentsContent() ?? '').replace(/\s+/g, ' '))
}

function stageNamed (name: string | undefined): DockerStage | undefined {
  return stages.find((stage) => stage.name === name)
}

/** COPY sources of a stage: [from stage or null for the build context, ...sources]. */
function copies (stage: DockerStage): Array<{ from: string | null, sources: string[] }> {
  return of(stage, 'COPY').map((instruction) => {
    if (!(instruction instanceof Copy)) throw new Error('COPY instruction expected')
    const paths = instruction.getArguments().map((argument) => argument.getValue())
    return { from: instruction.getFromFlag()?.getValue() ?? null, sources: paths.slice(0, -1) }
  })
}

void t.test('dockerfile-utils finds nothing to report', async (t) => {
  t.same(lint(dockerfile), [])
})

void t.test('the linter reports broken instructions (so the check above can fail)', async (t) => {
  const broken = dockerfile
    .replace('WORKDIR /app', 'WORKDIR app')
    .replace('EXPOSE 8080', 'EXPOSE http')
    .replace('CMD ["node", "dist/server/main.js"]', "CMD ['node', 'dist/server/main.js']")
  t.same(lint(broken).map((message) => message.replace(/^line \d+: /, '')).sort(), [
    'Invalid containerPort: http',
    'Instruction written as a JSON array but is using single quotes instead of double quotes',
    'WORKDIR paths should be absolute'
  ].sort())
})

void t.test('multi-stage from one pinned Node LTS base', async (t) => {
  t.same(stages.map((stage) => stage.name), ['base', 'build', 'prod-deps', 'runtime'])
  for (const stage of stages) {
    const parent = stages.slice(0, stages.indexOf(stage)).find((earlier) => earlier.name === stage.image)
    if (parent !== undefined) continue
    t.equal(stage.image, 'node', 'external images are the official node image')
    // Node 22 or 24 (LTS; 20 is end-of-life), a full version and a Debian variant: never a moving tag.
    t.match(stage.tag, /^(22|24)\.\d+\.\d+-bookworm-slim$/, `${stage.image}:${stage.tag} is pinned`)
  }
  t.equal(stages.filter((stage) => stage.tag !== null).length, 1, 'the base image is named once')
  t.equal(stages[0]!.tag, '24.21.0-bookworm-slim')
  t.same(of(stages[0]!, 'WORKDIR').map((instruction) => instruction.getArgumentsContent()), ['/app'])
})

void t.test('npm ci with dev dependencies, then the build; production dependencies installed apart', async (t) => {
  const build = stageNamed('build')!
  t.same(runs(build), ['npm ci --workspaces=false --include-workspace-root --no-audit --no-fund', 'npm run build'])
  t.same(runs(stageNamed('prod-deps')!), ['npm ci --omit=dev --ignore-scripts --workspaces=false --include-workspace-root --no-audit --no-fund && npm cache clean --force'])
  t.notOk(stageEnv(stages, build).NODE_ENV, 'no NODE_ENV=production while dev dependencies install')
})

void t.test('the build stage gets every input of `npm run build` from the build context', async (t) => {
  const build = stageNamed('build')!
  const sources = copies(build).flatMap((copy) => copy.from === null ? copy.sources : [])
  t.same(sources, ['package.json', 'package-lock.json', 'packages/client/package.json', 'packages/react/package.json', 'tsconfig.json', 'scripts', 'src', 'packages/client/src'])
  const script = (JSON.parse(readText('package.json')) as { scripts: Record<string, string> }).scripts.build!
  for (const project of [...script.matchAll(/tsc -p (\S+)/g)].map((match) => match[1]!)) {
    t.ok(sources.includes(project), `${project} (used by npm run build) is copied`)
  }
  for (const file of [...script.matchAll(/node (\S+)/g)].map((match) => match[1]!)) {
    t.ok(sources.includes(file.split('/')[0]!), `${file} (run by npm run build) is copied`)
  }
  const rules = dockerignoreRules()
  for (const source of sources) {
    t.ok(existsSync(join(root, source)), `${source} exists`)
    t.notOk(dockerignored(rules, source), `${source} is in the build context`)
  }
})

void t.test('the runtime stage ships dist/, production node_modules and package.json only', async (t) => {
  t.same(copies(runtime), [
    { from: 'prod-deps', sources: ['/app/node_modules'] },
    { from: 'build', sources: ['/app/dist'] },
    { from: null, sources: ['package.json'] }
  ])
  t.same(of(runtime, 'ADD'), [], 'no ADD')
  t.equal(runtime.image, 'base', 'built on the same base, without the build tools of the build stage')
})

void t.test('runs as a numeric non-root user with NODE_ENV=production', async (t) => {
  const users = of(runtime, 'USER').map((instruction) => instruction.getArgumentsContent())
  t.same(users, ['1000:1000'])
  const [uid, gid] = users[0]!.split(':').map(Number)
  t.ok(uid! > 0 && gid! > 0, 'not root, by number (runAsNonRoot can verify it)')
  t.same(stageEnv(stages, runtime), { NODE_ENV: 'production', PORT: '8080', HOST: '0.0.0.0' })
  t.same(of(runtime, 'EXPOSE').map((instruction) => instruction.getArgumentsContent()), [stageEnv(stages, runtime).PORT])
  for (const name of stages.flatMap((stage) => Object.keys(stageEnv(stages, stage)))) {
    t.notMatch(name, /SECRET|PASSWORD|TOKEN|REDIS_URL/, `${name} is not a secret baked into the image`)
  }
})

void t.test('exec-form CMD under tini as PID 1', async (t) => {
  const cmds = of(runtime, 'CMD')
  const entrypoints = of(runtime, 'ENTRYPOINT')
  t.equal(cmds.length, 1)
  t.equal(entrypoints.length, 1)
  t.same(execForm(cmds[0]!), ['node', 'dist/server/main.js'])
  t.same(execForm(entrypoints[0]!), ['/usr/bin/tini', '--'])
  t.equal(execForm(DockerfileParser.parse('CMD npm start').getCMDs()[0]!), null, 'shell form is told apart')
  // Debian's tini package installs /usr/bin/tini; the apt lists do not stay in the layer.
  t.same(runs(runtime), ['apt-get update && apt-get install -y --no-install-recommends tini && rm -rf /var/lib/apt/lists/*'])
  // The CMD runs what `npm run build` writes: tsc maps src/ to dist/.
  const tsconfig = JSON.parse(readText('tsconfig.json')) as { compilerOptions: { outDir: string, rootDir: string } }
  t.same([tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir], ['src', 'dist'])
  t.ok(existsSync(join(root, 'src/server/main.ts')))
  t.same(of(runtime, 'STOPSIGNAL'), [], 'the default SIGTERM, which main.ts drains on')
})

void t.test('no HEALTHCHECK in the image: Kubernetes probes it, compose declares its own', async (t) => {
  t.same(DockerfileParser.parse(dockerfile).getHEALTHCHECKs(), [])
})

void t.test('.dockerignore keeps dev files, secrets and local builds out of the context', async (t) => {
  const rules = dockerignoreRules()
  for (const path of ['node_modules', '.git', 'test', 'bench', '.dev-secret', 'coverage', '.tap', 'dist', '.env', '.env.local',
    'node_modules/fastify/package.json', '.git/HEAD', 'test/deploy/manifests.test.ts', 'bench/run.ts', 'docs/deployment.md', 'k8s/base/deployment.yaml',
    'README.md', 'src/server/.dev-secret', 'src/node_modules/x.js', 'npm-debug.log']) {
    t.ok(dockerignored(rules, path), `${path} is left out`)
  }
  for (const path of ['package.json', 'package-lock.json', 'tsconfig.json', 'scripts/build-assets.mjs', 'src', 'src/server/main.ts', 'src/server/engine/lua/publish.lua', 'packages/client/src/index.ts', 'packages/client/package.json', 'packages/react/package.json']) {
    t.notOk(dockerignored(rules, path), `${path} is sent`)
  }
})

void t.test('the .dockerignore matcher follows Docker: last match wins, parents count, ! re-includes', async (t) => {
  t.equal(dockerignored(['*'], 'a/b'), true)
  t.equal(dockerignored(['*', '!a'], 'a/b'), false)
  t.equal(dockerignored(['*', '!a', 'a/b'], 'a/b'), true)
  t.equal(dockerignored(['**/x'], 'x'), true)
  t.equal(dockerignored(['**/x'], 'a/x/y'), true)
  t.equal(dockerignored(['/x/'], 'x/y'), true)
  t.equal(dockerignored(['x'], 'a/x'), false, 'a plain name is anchored at the root')
  t.equal(dockerignored(['*.log'], '.hidden.log'), true)
})
