/**
 * Linux `perf` sampling of a server child (on-CPU time of every thread, kernel
 * included), summarized like the V8 profile: each sample is charged to the nearest
 * JavaScript frame that belongs to a package or to the gateway's source, so a
 * socket write in the kernel made for ioredis counts for ioredis. Needs the child
 * started with --perf-basic-prof (JIT symbols) and --interpreted-frames-native-stack.
 */
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync, statSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { areaOf, ownerOf, sorted, type Bucket } from './cpuprofile.js'

export const PERF_NODE_ARGS = ['--perf-basic-prof', '--interpreted-frames-native-stack'] as const

export function perfAvailable (): boolean {
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

export interface Recording<T> {
  readonly result: T
  /** Length of the child's perf map when the recording ended: later entries describe later code. */
  readonly mapBytes: number
}

/** Records `pid` while `phase` runs, then stops perf by its own pid (SIGINT). */
export async function perfRecord<T> (pid: number, file: string, phase: () => Promise<T>): Promise<Recording<T>> {
  const perf = spawn('perf', ['record', '-e', 'cpu-clock', '-F', '1999', '-g', '-p', String(pid), '-o', file, '--quiet'], { stdio: 'ignore' })
  const exited = once(perf, 'exit')
  // perf attaches asynchronously: give it a moment (bounded) before the load starts.
  await new Promise((resolve) => setTimeout(resolve, 500))
  try {
    const result = await phase()
    return { result, mapBytes: statSync(`/tmp/perf-${pid}.map`).size }
  } finally {
    perf.kill('SIGINT')
    const timer = setTimeout(() => { perf.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(timer)
  }
}

export interface PerfSummary {
  readonly samples: number
  readonly mainThreadShare: number
  readonly kernelShare: number
  readonly areas: readonly Bucket[]
  readonly owners: readonly Bucket[]
  /** By the innermost JavaScript function on the stack (native work charged to it). */
  readonly functions: readonly Bucket[]
  readonly total: number
}

function shortName (sym: string): string {
  const js = /^JS:\S?(\S*)\s+(\S+):(\d+):\d+$/.exec(sym)
  if (js === null) return sym
  const url = js[2]!
  const owner = ownerOf(url) ?? url.replace(/^node:(internal\/)?/, 'node:')
  const file = url.includes('/node_modules/') ? url.slice(url.lastIndexOf('/') + 1) : ''
  return `${js[1] === '' ? '(anonymous)' : js[1]!} ${owner}${file === '' ? '' : `/${file}`}:${js[3]!}`
}

const GC_SYMBOL = /v8::internal::(Heap::|Scavenger|ScavengerCollector|MarkCompactCollector|MinorMarkCompact|Sweeper|ConcurrentMarking|IncrementalMarking|GCTracer)|v8::internal::.*::(Scavenge|Evacuat)/

interface Frame { readonly sym: string, readonly dso: string }

const JIT_SYMBOL = /v8::internal::(compiler::|maglev::|baseline::|OptimizingCompileDispatcher|Compiler::|OptimizedCompilationJob)/

function chargeSample (frames: readonly Frame[], mainThread: boolean): string {
  if (frames.some((frame) => GC_SYMBOL.test(frame.sym))) return 'GC'
  if (frames.some((frame) => JIT_SYMBOL.test(frame.sym))) return 'JIT compiler (V8)'
  let nodeCore: string | undefined
  for (const frame of frames) {
    const js = /^JS:\S*\s+(\S+):\d+:\d+$/.exec(frame.sym)
    if (js === null) continue
    const url = js[1]!
    const owner = ownerOf(url)
    if (owner !== undefined) return owner
    if (nodeCore === undefined && url.startsWith('node:')) nodeCore = url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/')
  }
  if (nodeCore !== undefined) return nodeCore
  if (!mainThread) return '(other threads: libuv pool, V8 workers)'
  const leaf = frames[0]
  if (leaf?.dso.includes('kernel') === true) return '(node core)'
  return '(program)'
}

/**
 * Resolves JIT addresses with /tmp/perf-<pid>.map, the latest entry covering an
 * address winning. V8 frees and reuses code space, the map is append-only, and
 * perf itself may pick a stale entry (a module's top-level code run once at boot
 * showing up as hot). The map is
 * read only up to where the map stood when the recording ended (code compiled
 * later, e.g. at shutdown, may reuse the addresses).
 */
class JitSymbols {
  readonly #starts: number[] = []
  readonly #ends: number[] = []
  readonly #order: number[] = []
  readonly #names: string[] = []
  #maxSize = 0
  readonly #cache = new Map<string, string | undefined>()

  constructor (mapFile: string, mapBytes: number) {
    const entries = readFileSync(mapFile).subarray(0, mapBytes).toString('utf8').split('\n').flatMap((line, order) => {
      const match = /^([0-9a-f]+) ([0-9a-f]+) (.*)$/.exec(line)
      if (match === null) return []
      const start = Number.parseInt(match[1]!, 16)
      const size = Number.parseInt(match[2]!, 16)
      return [{ start, end: start + size, order, name: match[3]! }]
    }).sort((a, b) => a.start - b.start)
    for (const entry of entries) {
      this.#starts.push(entry.start)
      this.#ends.push(entry.end)
      this.#order.push(entry.order)
      this.#names.push(entry.name)
      this.#maxSize = Math.max(this.#maxSize, entry.end - entry.start)
    }
  }

  resolve (ipHex: string): string | undefined {
    if (this.#cache.has(ipHex)) return this.#cache.get(ipHex)
    const ip = Number.parseInt(ipHex, 16)
    // Last entry starting at or before ip, then back over every entry that could still cover it.
    let low = 0
    let high = this.#starts.length - 1
    while (low <= high) {
      const middle = (low + high) >> 1
      if (this.#starts[middle]! <= ip) low = middle + 1
      else high = middle - 1
    }
    let best: number | undefined
    for (let i = high; i >= 0 && this.#starts[i]! >= ip - this.#maxSize; i--) {
      if (this.#ends[i]! > ip && (best === undefined || this.#order[i]! > this.#order[best]!)) best = i
    }
    const name = best === undefined ? undefined : this.#names[best]
    this.#cache.set(ipHex, name)
    return name
  }
}

/** Parses `perf script` output of one recording of `pid` (its map is /tmp/perf-<pid>.map). */
export async function summarizePerf (file: string, pid: number, mapBytes: number): Promise<PerfSummary> {
  const jit = new JitSymbols(`/tmp/perf-${pid}.map`, mapBytes)
  const script = spawn('perf', ['script', '-i', file, '-F', 'tid,period,ip,sym,dso'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const lines = createInterface({ input: script.stdout! })
  const owners = new Map<string, number>()
  const functions = new Map<string, number>()
  let samples = 0
  let total = 0
  let main = 0
  let kernel = 0
  let tid = 0
  let period = 0
  let frames: Frame[] = []
  const flush = (): void => {
    if (period === 0) return
    samples++
    total += period
    if (tid === pid) main += period
    if (frames[0]?.dso.includes('kernel') === true) kernel += period
    const owner = chargeSample(frames, tid === pid)
    owners.set(owner, (owners.get(owner) ?? 0) + period)
    const innermost = owner === 'GC' || owner === 'JIT compiler (V8)' ? owner : frames.find((frame) => frame.sym.startsWith('JS:'))?.sym
    const fn = innermost === undefined ? owner : shortName(innermost)
    functions.set(fn, (functions.get(fn) ?? 0) + period)
    frames = []
    period = 0
  }
  for await (const line of lines) {
    if (line.trim() === '') { flush(); continue }
    if (!line.startsWith('\t')) {
      flush()
      const [tidText, periodText] = line.trim().split(/\s+/)
      tid = Number(tidText)
      period = Number(periodText)
      continue
    }
    const match = /^\s*([0-9a-f]+)\s+(.*)\s+\(([^)]*)\)\s*$/.exec(line)
    if (match === null) continue
    const dso = match[3]!
    const sym = dso.startsWith('/tmp/perf-') ? jit.resolve(match[1]!) ?? '[unknown]' : match[2]!
    frames.push({ sym, dso })
  }
  flush()
  await once(script, 'close')
  const areas = new Map<string, number>()
  for (const [owner, value] of owners) {
    const area = owner === '(other threads: libuv pool, V8 workers)' || owner === 'JIT compiler (V8)' ? owner : areaOf(owner)
    areas.set(area, (areas.get(area) ?? 0) + value)
  }
  return { samples, total, mainThreadShare: main / total, kernelShare: kernel / total, areas: sorted(areas), owners: sorted(owners), functions: sorted(functions) }
}
