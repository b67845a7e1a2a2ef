import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'

/**
 * A TypeScript child of the orchestrator (`node --import tsx <file>`) with an IPC
 * channel: typed messages both ways, stderr kept (bounded) for error reports,
 * stopped by its own pid.
 */
export class TsChild<In, Out> {
  readonly name: string
  readonly #child: ChildProcess
  readonly #stderr: string[] = []
  #stderrBytes = 0

  constructor (name: string, file: URL, env: Record<string, string> = {}) {
    this.name = name
    this.#child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(file)], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc']
    })
    this.#child.stderr?.setEncoding('utf8')
    this.#child.stderr?.on('data', (chunk: string) => {
      if (this.#stderrBytes > 64 * 1024) return
      this.#stderrBytes += chunk.length
      this.#stderr.push(chunk)
    })
    // A dead child's IPC channel errors on send; the exit is what the orchestrator watches.
    this.#child.on('error', () => {})
  }

  get pid (): number {
    if (this.#child.pid === undefined) throw new Error(`${this.name}: no pid`)
    return this.#child.pid
  }

  get alive (): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  send (message: In): void {
    if (this.#child.connected) this.#child.send(message as object)
  }

  on (listener: (message: Out) => void): void {
    this.#child.on('message', listener as (message: unknown) => void)
  }

  /** The first message that `accept` takes; rejects on exit or after `timeoutMs`. */
  async next<T extends Out> (accept: (message: Out) => message is T, timeoutMs: number, what: string): Promise<T> {
    const child = this.#child
    return await new Promise<T>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer)
        child.off('message', onMessage)
        child.off('exit', onExit)
      }
      const timer = setTimeout(() => { done(); reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms\n${this.stderrText()}`)) }, timeoutMs)
      const onMessage = (message: unknown): void => {
        if (!accept(message as Out)) return
        done()
        resolve(message as T)
      }
      const onExit = (code: number | null, signal: string | null): void => {
        done()
        reject(new Error(`${this.name} exited (${code ?? signal ?? '?'}) before ${what}\n${this.stderrText()}`))
      }
      child.on('message', onMessage)
      child.once('exit', onExit)
    })
  }

  /** Waits up to `graceMs` for the child to leave by itself, then SIGKILL by pid. */
  async stop (graceMs = 0): Promise<void> {
    const child = this.#child
    if (!this.alive) return
    const exited = once(child, 'exit')
    const timer = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
    if (graceMs === 0) child.kill('SIGKILL')
    await exited
    clearTimeout(timer)
  }

  stderrText (): string {
    return this.#stderr.join('').slice(0, 4000)
  }
}
