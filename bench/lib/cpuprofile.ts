/**
 * Summarizes a V8 .cpuprofile (main thread only) by where the time goes. Each
 * sample is charged to the nearest frame on its stack that belongs to a package or
 * to the gateway's own source, so work done inside Node or V8 builtins on behalf of
 * a library (JSON.stringify for pino, crypto for jose) counts for that library.
 */
import { readFileSync } from 'node:fs'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[], startTime: number, endTime: number }

export interface Bucket { readonly name: string, readonly micros: number }
export interface ProfileSummary {
  /** Sampled main-thread time that was not idle. */
  readonly busyMicros: number
  readonly idleMicros: number
  /** By owner: package, gateway source file, node core module, GC. */
  readonly owners: readonly Bucket[]
  /** By area of the request path (see AREAS). */
  readonly areas: readonly Bucket[]
  /** Inclusive time of chosen functions (on the stack anywhere). */
  readonly inclusive: readonly Bucket[]
  /** Self time by function (name, package or file, line), no charging to callers. */
  readonly functions: readonly Bucket[]
}

/** Package (or src file) a script URL belongs to; undefined for node core and builtins. */
export function ownerOf (url: string): string | undefined {
  const modules = url.lastIndexOf('/node_modules/')
  if (modules !== -1) {
    const rest = url.slice(modules + '/node_modules/'.length).split('/')
    return rest[0]?.startsWith('@') === true ? `${rest[0]}/${rest[1] ?? ''}` : rest[0]
  }
  const src = url.indexOf('/src/')
  if (src !== -1) return url.slice(src + 1)
  return undefined
}

/** Areas of the hot path: owners grouped (first match wins). */
export const AREAS: ReadonlyArray<readonly [string, (owner: string) => boolean]> = [
  ['JWT verify (jose)', (owner) => owner === 'jose' || owner === 'src/server/auth/token-verifier.ts'],
  ['logging (pino, redaction, serializers, log controller)', (owner) => /^(pino|pino-std-serializers|sonic-boom|@pinojs\/.*|fast-redact|quick-format-unescaped|safe-stable-stringify|thread-stream|fast-safe-stringify)$/.test(owner) || owner === 'src/server/logging.ts'],
  ['Redis client (ioredis)', (owner) => /^(ioredis|redis-parser|denque|cluster-key-slot|@ioredis\/commands|standard-as-callback|redis-errors)$/.test(owner)],
  ['rate limit (@fastify/rate-limit)', (owner) => owner === '@fastify/rate-limit' || owner === 'toad-cache'],
  ['WebSocket (ws, @fastify/websocket)', (owner) => owner === 'ws' || owner === '@fastify/websocket'],
  ['metrics (prom-client)', (owner) => owner === 'prom-client' || owner === 'tdigest' || owner === 'bintrees'],
  ['Fastify core (routing, hooks, validation, serialization)', (owner) => /^(fastify|find-my-way|avvio|fast-json-stringify|ajv|@fastify\/.*|fast-uri|fastq|light-my-request|process-warning|rfdc|toad-cache|abstract-logging|fast-querystring|json-schema-ref-resolver|@fastify\/ajv-compiler|fast-decode-uri-component|safe-regex2|ret)$/.test(owner)],
  ['gateway src (other)', (owner) => owner.startsWith('src/')],
  ['node core (http, net, streams, crypto, timers)', (owner) => owner.startsWith('node:') || owner === '(node core)'],
  ['GC', (owner) => owner === '(garbage collector)' || owner === 'GC'],
  ['V8 / native (program)', (owner) => owner === '(program)']
]

/** Functions whose inclusive time is reported (name, url fragment). */
const INCLUSIVE: ReadonlyArray<readonly [string, string, string]> = [
  ['verifyToken (token-verifier.ts)', 'verifyToken', 'token-verifier.ts'],
  ['jwtVerify (jose)', 'jwtVerify', '/jose/'],
  ['TicketService.issue', 'issue', 'ticket-service.ts'],
  ['hashTicket (sha256)', 'hashTicket', 'ticket-service.ts'],
  ['requestCompleted (log line)', 'requestCompleted', 'logging.ts'],
  ['requestIdOf (randomUUID)', 'requestIdOf', 'logging.ts'],
  ['applyRateLimit', 'applyRateLimit', '@fastify/rate-limit'],
  ['ioredis sendCommand', 'sendCommand', '/ioredis/'],
  ['ws handleUpgrade', 'handleUpgrade', '/ws/'],
  ['ws completeUpgrade', 'completeUpgrade', '/ws/'],
  ['pino child()', 'child', '/pino/'],
  ['Connection constructor', 'Connection', 'connection.ts'],
  ['Hub.add', 'add', 'hub.ts'],
  ['randomUUID', 'randomUUID', 'node:internal/crypto/random']
]

export function areaOf (owner: string): string {
  return AREAS.find(([, test]) => test(owner))?.[0] ?? `other: ${owner}`
}

export function sorted (map: Map<string, number>): Bucket[] {
  return [...map].map(([name, micros]) => ({ name, micros })).sort((a, b) => b.micros - a.micros)
}

export function summarizeProfile (file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map<number, ProfileNode>()
  const parent = new Map<number, number>()
  for (const node of profile.nodes) {
    byId.set(node.id, node)
    for (const child of node.children ?? []) parent.set(child, node.id)
  }

  // Owner per node: its own, else the nearest owning ancestor's, else node core/GC/program.
  const ownerCache = new Map<number, string>()
  const resolveOwner = (id: number): string => {
    const cached = ownerCache.get(id)
    if (cached !== undefined) return cached
    const frame = byId.get(id)!.callFrame
    let owner = ownerOf(frame.url)
    if (owner === undefined) {
      const up = parent.get(id)
      const upOwner = up === undefined ? undefined : resolveOwner(up)
      if (upOwner !== undefined && upOwner !== '(root)' && !upOwner.startsWith('node:') && !upOwner.startsWith('(')) owner = upOwner
      else if (frame.url.startsWith('node:')) owner = frame.url.replace(/^node:(internal\/)?/, 'node:').split('/').slice(0, 2).join('/')
      else if (frame.functionName.startsWith('(')) owner = frame.functionName
      else owner = upOwner ?? '(node core)'
    }
    ownerCache.set(id, owner)
    return owner
  }

  const owners = new Map<string, number>()
  const functions = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let busy = 0
  let idle = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!
    const micros = profile.timeDeltas[i + 1] ?? 0
    const leaf = byId.get(id)!
    if (leaf.callFrame.functionName === '(idle)') { idle += micros; continue }
    busy += micros
    const owner = resolveOwner(id)
    owners.set(owner, (owners.get(owner) ?? 0) + micros)
    const frame = leaf.callFrame
    const where = ownerOf(frame.url) ?? (frame.url === '' ? '' : frame.url.replace(/^node:(internal\/)?/, 'node:'))
    const fn = `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${where}${where === '' ? '' : `:${frame.lineNumber + 1}`}`
    functions.set(fn, (functions.get(fn) ?? 0) + micros)
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const frame = byId.get(at)!.callFrame
      for (const [label, name, url] of INCLUSIVE) {
        if (!seen.has(label) && frame.functionName === name && frame.url.includes(url)) {
          seen.add(label)
          inclusive.set(label, (inclusive.get(label) ?? 0) + micros)
        }
      }
    }
  }

  const areas = new Map<string, number>()
  for (const [owner, micros] of owners) {
    const area = areaOf(owner)
    areas.set(area, (areas.get(area) ?? 0) + micros)
  }
  return { busyMicros: busy, idleMicros: idle, owners: sorted(owners), areas: sorted(areas), inclusive: sorted(inclusive), functions: sorted(functions) }
}
