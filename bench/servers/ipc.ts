/**
 * The IPC protocol between bench/run.ts and a server child. The parent asks for
 * process.cpuUsage() (user + system of every thread of the process, libuv
 * threadpool included, in microseconds) before and after each measured phase.
 */
export interface ReadyMessage { readonly type: 'ready', readonly port: number }
export interface CpuMessage { readonly type: 'cpu', readonly id: number, readonly user: number, readonly system: number }
export type ChildMessage = ReadyMessage | CpuMessage

export type ParentMessage = { readonly type: 'cpu', readonly id: number } | { readonly type: 'stop' }

/** Answers the parent's messages; `stop` runs `close` then exits (so --cpu-prof is written). */
export function serveParent (close: () => Promise<void>): void {
  if (process.send === undefined) throw new Error('run me from bench/run.ts (needs an IPC channel)')
  const send = process.send.bind(process)
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'cpu') {
      const usage = process.cpuUsage()
      send({ type: 'cpu', id: message.id, user: usage.user, system: usage.system } satisfies CpuMessage)
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
