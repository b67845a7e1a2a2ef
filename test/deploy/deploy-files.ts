/**
 * Readers for the deployment files (Dockerfile, .dockerignore, docker-compose.yml, k8s/)
 * shared by the test/deploy tests. They parse; the tests decide what is right.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { DockerfileParser, type Instruction } from 'dockerfile-ast'
import picomatch from 'picomatch'

export const root = fileURLToPath(new URL('../../', import.meta.url))

export function readText (path: string): string {
  return readFileSync(join(root, path), 'utf8')
}

/** Every YAML document in a file, as plain data; a YAML error fails loudly. */
export function readYamlDocuments (path: string): unknown[] {
  return parseAllDocuments(readText(path)).map((document) => {
    if (document.errors.length > 0) throw new Error(`${path}: ${document.errors.map((error) => error.message).join('; ')}`)
    return document.toJS() as unknown
  }).filter((document) => document !== null)
}

export function readYaml (path: string): unknown {
  const documents = readYamlDocuments(path)
  if (documents.length !== 1) throw new Error(`${path}: expected one YAML document, found ${documents.length}`)
  return documents[0]
}

/** Paths (relative to the repository, `/`-separated) of the files under `dir`, sorted. */
export function filesUnder (dir: string): string[] {
  const found: string[] = []
  const walk = (absolute: string): void => {
    for (const name of readdirSync(absolute)) {
      const path = join(absolute, name)
      if (statSync(path).isDirectory()) walk(path)
      else found.push(relative(root, path).split('\\').join('/'))
    }
  }
  walk(join(root, dir))
  return found.sort()
}

export interface ManifestDocument {
  readonly file: string
  readonly apiVersion: string
  readonly kind: string
  readonly name: string
  readonly data: Record<string, unknown>
}

/** Every YAML document under k8s/, with where it came from. */
export function k8sDocuments (): ManifestDocument[] {
  return filesUnder('k8s').filter((file) => /\.ya?ml$/.test(file)).flatMap((file) => readYamlDocuments(file).map((document) => {
    const data = document as Record<string, unknown>
    const metadata = data.metadata as { name?: unknown } | undefined
    return {
      file,
      apiVersion: String(data.apiVersion),
      kind: String(data.kind),
      name: typeof metadata?.name === 'string' ? metadata.name : '',
      data
    }
  }))
}

/** The one document of `kind` in `file`. */
export function k8sDocument (file: string, kind: string): Record<string, unknown> {
  const matches = k8sDocuments().filter((document) => document.file === file && document.kind === kind)
  if (matches.length !== 1) throw new Error(`${file}: expected one ${kind}, found ${matches.length}`)
  return matches[0]!.data
}

/** String data of a ConfigMap or a Secret (`stringData`, or base64 `data`). */
export function stringDataOf (document: Record<string, unknown>): Record<string, string> {
  const result: Record<string, string> = {}
  for (const [key, value] of Object.entries((document.data ?? {}) as Record<string, unknown>)) {
    result[key] = document.kind === 'Secret' ? Buffer.from(String(value), 'base64').toString('utf8') : String(value)
  }
  for (const [key, value] of Object.entries((document.stringData ?? {}) as Record<string, unknown>)) result[key] = String(value)
  return result
}

export const configMapData = (): Record<string, string> => stringDataOf(k8sDocument('k8s/base/configmap.yaml', 'ConfigMap'))
export const exampleSecretData = (): Record<string, string> => stringDataOf(k8sDocument('k8s/overlays/example/secret.example.yaml', 'Secret'))

/**
 * The environment variables the gateway knows: those both parsed by the TypeBox
 * schema in src/server/config.ts and documented in .env.example (SPEC §2).
 */
export function knownEnvNames (): { schema: Set<string>, example: Set<string> } {
  const source = readText('src/server/config.ts')
  const schemaBody = /const EnvSchema = Type\.Object\(\{([\s\S]*?)\n\}\)/.exec(source)?.[1]
  if (schemaBody === undefined) throw new Error('EnvSchema not found in src/server/config.ts')
  const schema = new Set([...schemaBody.matchAll(/^\s+([A-Z][A-Z0-9_]*): Type\./gm)].map((match) => match[1]!))
  const example = new Set([...readText('.env.example').matchAll(/^#?\s?([A-Z][A-Z0-9_]*)=/gm)].map((match) => match[1]!))
  return { schema, example }
}

export interface DockerStage {
  readonly name: string | null
  readonly image: string
  readonly tag: string | null
  readonly digest: string | null
  readonly instructions: Instruction[]
}

export function dockerStages (text = readText('Dockerfile')): DockerStage[] {
  const stages: DockerStage[] = []
  for (const instruction of DockerfileParser.parse(text).getInstructions()) {
    if (instruction.getKeyword() === 'FROM') {
      const [reference = '', as, name] = instruction.getArguments().map((argument) => argument.getValue())
      const [image = '', digest = null] = reference.split('@')
      // A tag is the part after the last ':' that is not in the registry host (host:port/name).
      const colon = image.lastIndexOf(':')
      const tagged = colon !== -1 && colon > image.lastIndexOf('/')
      stages.push({
        name: as?.toUpperCase() === 'AS' && name !== undefined ? name : null,
        image: tagged ? image.slice(0, colon) : image,
        tag: tagged ? image.slice(colon + 1) : null,
        digest,
        instructions: []
      })
    } else {
      stages.at(-1)?.instructions.push(instruction)
    }
  }
  return stages
}

/** ENV of a stage and the stages it is built FROM, in order (later values win). */
export function stageEnv (stages: DockerStage[], stage: DockerStage): Record<string, string> {
  const parent = stages.find((candidate) => candidate.name !== null && candidate.name === stage.image)
  const env: Record<string, string> = parent === undefined ? {} : stageEnv(stages, parent)
  for (const instruction of stage.instructions) {
    if (instruction.getKeyword() !== 'ENV') continue
    for (const argument of instruction.getArguments()) {
      const [name, ...value] = argument.getValue().split('=')
      env[name!] = value.join('=')
    }
  }
  return env
}

/** The final stage's CMD or ENTRYPOINT as an exec-form array, or null when it is in shell form. */
export function execForm (instruction: Instruction): string[] | null {
  const content = instruction.getArgumentsContent() ?? ''
  if (!content.trimStart().startsWith('[')) return null
  const parsed = JSON.parse(content) as unknown
  return Array.isArray(parsed) && parsed.every((item) => typeof item === 'string') ? parsed : null
}

/**
 * Whether `path` (relative, `/`-separated) is left out of the build context by the
 * .dockerignore rules: the last rule matching the path or one of its parent
 * directories wins, `!` re-includes (Docker's semantics).
 */
export function dockerignored (rules: string[], path: string): boolean {
  const parts = path.split('/')
  let ignored = false
  for (const rule of rules) {
    const negated = rule.startsWith('!')
    const pattern = (negated ? rule.slice(1) : rule).replace(/^\/+/, '').replace(/\/+$/, '')
    const matches = picomatch(pattern, { dot: true })
    if (parts.some((_, index) => matches(parts.slice(0, index + 1).join('/')))) ignored = !negated
  }
  return ignored
}

export function dockerignoreRules (): string[] {
  return readText('.dockerignore').split('\n').map((line) => line.trim()).filter((line) => line !== '' && !line.startsWith('#'))
}
