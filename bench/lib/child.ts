import { spawn, type ChildProcess } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ChildMessage, ParentMessage } from '../servers/ipc.js'

export interface CpuSample {
  /** process.cpuUsage() of the child, microseconds. */
  readonly user: number
  readonly system: number
  /** utime + stime from /proc/<pid>/stat, microseconds (clock-tick resolution). */
  readonly procMicros: number
}

const CLOCK_TICKS_PER_SECOND = 100

/** utime + stime of any process from /proc/<pid>/stat, in microseconds (all its threads). */
export function procCpuMicros (pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  return (utime + stime) * (1_000_000 / CLOCK_TICKS_PER_SECOND)
}

/**
 * A server child (bench/servers/*.ts) run as `node --import tsx <file>`: stdout to
 * /dev/null (the gateway's logs), stderr kept for failures, IPC for the port and
 * CPU readings. Stopped by its own pid.
 */
export class ServerChild {
  readonly name: string
  readonly port: number
  readonly #child: ChildProcess
  readonly #stderr: string[]
  #nextId = 1

  private constructor (name: string, port: number, child: ChildProcess, stderr: string[]) {
    this.name = name
    this.port = port
    this.#child = child
    this.#stderr = stderr
  }

  get pid (): number {
    if (this.#child.pid === undefined) throw new Error(`${this.name}: no pid`)
    return this.#child.pid
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /**
   * `raiseFileLimit`: run through `sh -c 'ulimit -n <hard limit>; exec node …'`, so a
   * server can hold more sockets than the soft limit allows (bench/scale.ts). The
   * shell execs node, so the pid stays the server's.
   */
  static async start (name: string, script: string, env: Record<string, string>, nodeArgs: readonly string[] = [], options: { readonly raiseFileLimit?: boolean } = {}): Promise<ServerChild> {
    const file = fileURLToPath(new URL(`../servers/${script}`, import.meta.url))
    const devNull = openSync('/dev/null', 'w')
    const stderr: string[] = []
    let child: ChildProcess
    const argv = [...nodeArgs, '--import', 'tsx', file]
    const [command, args] = options.raiseFileLimit === true
      ? ['/bin/sh', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', process.execPath, ...argv]] as const
      : [process.execPath, argv] as const
    try {
      child = spawn(command, args, {
        // Only what is given (and PATH): nothing from the caller's environment leaks in.
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
        stdio: ['ignore', devNull, 'pipe', 'ipc']
      })
    } finally {
      closeSync(devNull)
    }
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => { if (stderr.length < 200) stderr.push(chunk) })

    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { fail(new Error(`${name} did not start within 30 s`)) }, 30_000)
      const fail = (err: Error): void => {
        clearTimeout(timer)
        child.kill('SIGKILL')
        reject(new Error(`${err.message}\n${stderr.join('')}`))
      }
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') { clearTimeout(timer); resolve(message.port) }
      })
      child.once('exit', (code) => { fail(new Error(`${name} exited with ${code} before it was ready`)) })
    })
    return new ServerChild(name, port, child, stderr)
  }

  /** The child's own process.cpuUsage(), plus /proc as a cross-check. */
  async cpu (): Promise<CpuSample> {
    const id = this.#nextId++
    const child = this.#child
    return await new Promise<CpuSample>((resolve, reject) => {
      const timer = setTimeout(() => { child.off('message', onMessage); reject(new Error(`${this.name}: no CPU reading within 5 s`)) }, 5000)
      const onMessage = (message: ChildMessage): void => {
        if (message.type !== 'cpu' || message.id !== id) return
        clearTimeout(timer)
        child.off('message', onMessage)
        resolve({ user: message.user, system: message.system, procMicros: procCpuMicros(this.pid) })
      }
      child.on('message', onMessage)
      child.send({ type: 'cpu', id } satisfies ParentMessage)
    })
  }

  /** RSS and heap of the child, after a full GC when it runs with --expose-gc. */
  async memory (): Promise<{ readonly rss: number, readonly heapUsed: number, readonly heapTotal: number, readonly external: number }> {
    const id = this.#nextId++
    const child = this.#child
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { child.off('message', onMessage); reject(new Error(`${this.name}: no memory reading within 10 s`)) }, 10_000)
      const onMessage = (message: ChildMessage): void => {
        if (message.type !== 'memory' || message.id !== id) return
        clearTimeout(timer)
        child.off('message', onMessage)
        resolve({ rss: message.rss, heapUsed: message.heapUsed, heapTotal: message.heapTotal, external: message.external })
      }
      child.on('message', onMessage)
      child.send({ type: 'memory', id } satisfies ParentMessage)
    })
  }

  /** Writes a V8 heap snapshot of the child to `file` (seconds, and twice the heap in memory). */
  async heapSnapshot (file: string): Promise<void> {
    await this.#request({ type: 'heap-snapshot', id: this.#nextId++, file }, 120_000)
  }

  /** Starts the child's V8 sampling profiler (100 µs interval). */
  async profileStart (): Promise<void> {
    await this.#request({ type: 'profile-start', id: this.#nextId++ })
  }

  /** Stops it and writes the .cpuprofile to `file`. */
  async profileStop (file: string): Promise<void> {
    await this.#request({ type: 'profile-stop', id: this.#nextId++, file })
  }

  async #request (message: ParentMessage & { id: number }, timeoutMs = 10_000): Promise<void> {
    const child = this.#child
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { child.off('message', onMessage); reject(new Error(`${this.name}: no answer to ${message.type} within ${timeoutMs / 1000} s`)) }, timeoutMs)
      const onMessage = (answer: ChildMessage): void => {
        if (answer.type !== 'profiled' || answer.id !== message.id) return
        clearTimeout(timer)
        child.off('message', onMessage)
        resolve()
      }
      child.on('message', onMessage)
      child.send(message)
    })
  }

  /** Graceful stop (the child exits itself, writing any --cpu-prof), then SIGKILL by pid after 8 s. */
  async stop (): Promise<void> {
    const child = this.#child
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
    if (child.connected) child.send({ type: 'stop' } satisfies ParentMessage)
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 8000)
    await exited
    clearTimeout(timer)
  }

  stderrText (): string {
    return this.#stderr.join('')
  }
}
