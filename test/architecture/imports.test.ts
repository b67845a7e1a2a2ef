/**
 * The import rules of docs/architecture.md, checked on the source itself so a change
 * that breaks them fails here rather than in a later review: no cycle, the domain
 * folders free of Fastify, ioredis, metrics and engine implementations, routes free of
 * engine implementations, the client SDK on the dependency-free protocol files alone, and
 * no file too large to read.
 */
import t from 'tap'
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { projectRoot } from '../helpers/build.js'

const MAX_LINES = 300
/** The facade wires every part of the client; it gets a little more room (issue 10). */
const MAX_FACADE_LINES = 350

function sourceFiles (folder: string): string[] {
  const found: string[] = []
  for (const name of readdirSync(folder)) {
    const path = join(folder, name)
    if (statSync(path).isDirectory()) found.push(...sourceFiles(path))
    else if (/\.tsx?$/.test(name)) found.push(path)
  }
  return found
}

interface SourceFile {
  readonly path: string
  readonly lines: number
  /** Every module specifier it imports or re-exports. */
  readonly specifiers: readonly string[]
  /** The project files those specifiers name. */
  readonly localImports: readonly string[]
}

const roots = ['src', 'packages/client/src', 'packages/react/src']
const files: SourceFile[] = roots.flatMap((root) => sourceFiles(join(projectRoot, root))).map((absolute) => {
  const text = readFileSync(absolute, 'utf8')
  const specifiers = [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/gm)].map((match) => match[1]!)
  return {
    path: relative(projectRoot, absolute),
    lines: text.split('\n').length - 1,
    specifiers,
    localImports: specifiers.filter((specifier) => specifier.startsWith('.'))
      .map((specifier) => relative(projectRoot, resolve(dirname(absolute), specifier.replace(/\.js$/, '.ts'))))
  }
})

function violations (pathPattern: RegExp, forbidden: RegExp): string[] {
  return files.filter((file) => pathPattern.test(file.path))
    .flatMap((file) => file.specifiers.filter((specifier) => forbidden.test(specifier)).map((specifier) => `${file.path} imports ${specifier}`))
}

await t.test('there is no import cycle', async (t) => {
  const byPath = new Map(files.map((file) => [file.path, file]))
  const state = new Map<string, 'visiting' | 'done'>()
  const cycles: string[] = []
  const visit = (path: string, trail: string[]): void => {
    state.set(path, 'visiting')
    for (const next of byPath.get(path)?.localImports ?? []) {
      if (!byPath.has(next)) continue
      if (state.get(next) === 'visiting') cycles.push([...trail.slice(trail.indexOf(next)), next].join(' → '))
      else if (!state.has(next)) visit(next, [...trail, next])
    }
    state.set(path, 'done')
  }
  for (const file of files) if (!state.has(file.path)) visit(file.path, [file.path])
  t.strictSame(cycles, [])
  t.ok(files.length > 50, `${files.length} source files read`)
})

await t.test('the domain imports no Fastify, ioredis, metrics or engine implementation', async (t) => {
  t.strictSame(violations(/^src\/server\/(channels|tickets|auth|ws|events)\//, /^fastify|^@fastify\/|^ioredis|\/metrics\/|memory-engine|redis-|create-engine/), [])
})

await t.test('the engine never imports Fastify', async (t) => {
  t.strictSame(violations(/^src\/server\/engine\//, /^fastify|^@fastify\//), [])
})

await t.test('routes import no engine implementation', async (t) => {
  t.strictSame(violations(/^src\/server\/routes\//, /memory-engine|redis-|create-engine|^ioredis/), [])
})

/** The protocol files the client SDK's build bundles in (packages/client/build.mjs). */
const CLIENT_PROTOCOL = /^\.\.\/\.\.\/\.\.\/src\/protocol\/(codes|offsets|server-frames)\.js$/

await t.test('the client SDK imports only its own files and the dependency-free protocol files', async (t) => {
  t.strictSame(violations(/^packages\/client\/src\//, /^(?!\.\/)/).filter((line) => !CLIENT_PROTOCOL.test(line.split(' imports ')[1]!)), [])
  t.strictSame(violations(/^src\/protocol\/(codes|offsets|server-frames)\.ts$/, /./), [], 'those protocol files import nothing')
})

await t.test('the React bindings import only React, the client package and their own files', async (t) => {
  t.strictSame(violations(/^packages\/react\/src\//, /^(?!\.\/|react$|react\/|@realtime-gateway\/client$)/), [])
})

await t.test(`no source file is over ${MAX_LINES} lines (the client facade ${MAX_FACADE_LINES})`, async (t) => {
  const over = files.filter((file) => file.lines > (file.path === 'packages/client/src/realtime-client.ts' ? MAX_FACADE_LINES : MAX_LINES))
  t.strictSame(over.map((file) => `${file.path}: ${file.lines} lines`), [])
})
