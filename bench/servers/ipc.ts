import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { writeHeapSnapshot } from 'node:v8'

/**
 * The IPC protocol between bench/run.ts and a server child. The parent asks for
 * process.cpuUsage() (user + system of every thread of the process, libuv
 * threadpool included, in microseconds) before and after each measured phase.
 */
export interface ReadyMessage { readonly type: 'ready', readonly port: number }
export interface CpuMessage { readonly type: 'cpu', readonly id: number, readonly user: number, readonly system: number }

export interface ProfiledMessage { readonly type: 'profiled', readonly id: number, readonly file: string }
/** After a full GC when the child runs with --expose-gc: RSS and V8 heap in bytes. */
export interface MemoryMessage { readonly type: 'memory', readonly id: number, readonly rss: number, readonly heapUsed: number, readonly heapTotal: number, readonly external: number }
export type ChildMessage = ReadyMessage | CpuMessage | ProfiledMessage | MemoryMessage

export type ParentMessage =
  | { readonly type: 'cpu', readonly id: number }
  | { readonly type: 'profile-start', readonly id: number }
  | { readonly type: 'profile-stop', readonly id: number, readonly file: string }
  | { readonly type: 'memory', readonly id: number }
  | { readonly type: 'heap-snapshot', readonly id: number, readonly file: string }
  | { readonly type: 'stop' }

/** The V8 profiler of this process, driven by the parent around one phase (bench/profile.ts). */
let session: Session | undefined
async function profileStart (): Promise<void> {
  session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.setSamplingInterval', { interval: 100 })
  await session.post('Profiler.start')
}
async function profileStop (file: string): Promise<void> {
  if (session === undefined) throw new Error('profiler not started')
  const { profile } = await session.post('Profiler.stop')
  writeFileSync(file, JSON.stringify(profile))
  session.disconnect()
  session = undefined
}

/** Answers the parent's messages; `stop` runs `close` (bounded to 5 s) and exits. */
export function serveParent (close: () => Promise<void>): void {
  if (process.send === undefined) throw new Error('run me from bench/run.ts (needs an IPC channel)')
  const send = process.send.bind(process)
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'cpu') {
      const usage = process.cpuUsage()
      send({ type: 'cpu', id: message.id, user: usage.user, system: usage.system } satisfies CpuMessage)
    } else if (message.type === 'profile-start') {
      profileStart().then(() => { send({ type: 'profiled', id: message.id, file: '' } satisfies ProfiledMessage) }, (err: unknown) => { throw err })
    } else if (message.type === 'profile-stop') {
      profileStop(message.file).then(() => { send({ type: 'profiled', id: message.id, file: message.file } satisfies ProfiledMessage) }, (err: unknown) => { throw err })
    } else if (message.type === 'memory') {
      // Twice: the first full GC runs finalizers whose memory the second one frees.
      globalThis.gc?.()
      globalThis.gc?.()
      const usage = process.memoryUsage()
      send({ type: 'memory', id: message.id, rss: usage.rss, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, external: usage.external } satisfies MemoryMessage)
    } else if (message.type === 'heap-snapshot') {
      writeHeapSnapshot(message.file)
      send({ type: 'profiled', id: message.id, file: message.file } satisfies ProfiledMessage)
    } else if (message.type === 'stop') {
      // Bounded: a close that hangs must not keep the benchmark alive.
      setTimeout(() => { process.exit(2) }, 5000).unref()
      close().then(() => { process.exit(0) }, () => { process.exit(1) })
    }
  })
  // The parent died: do not linger.
  process.on('disconnect', () => { process.exit(0) })
}

export function announce (port: number): void {
  process.send?.({ type: 'ready', port } satisfies ReadyMessage)
}
