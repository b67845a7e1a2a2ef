import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs'
import { request } from 'node:http'
import { now } from './protocol.js'

export interface HttpAnswer {
  readonly status: number
  readonly body: string
  readonly ms: number
}

/**
 * One GET on a fresh connection (as a kubelet probe does), bounded by `timeoutMs`.
 * Rejects with the socket error (ECONNREFUSED while the instance is down) or a timeout.
 */
export async function httpGet (port: number, path: string, timeoutMs: number): Promise<HttpAnswer> {
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }) })
      res.on('error', reject)
    })
    req.on('timeout', () => { req.destroy(Object.assign(new Error('timed out'), { code: 'TIMEOUT' })) })
    req.on('error', reject)
    req.end()
  })
}

export interface GatewayLife {
  readonly pid: number
  readonly startedAt: number
  exitedAt?: number
  exit?: string
}

/**
 * A gateway instance as production runs it: `node dist/server/main.js` with only
 * the environment production requires (no raised limits), its logs (stdout and
 * stderr) appended to one file per instance. It can be signalled and started
 * again on the same port, each run a new "life" with its own pid.
 */
export class GatewayProcess {
  readonly name: string
  readonly port: number
  /** PROBE_PORT, as the shipped Kubernetes ConfigMap sets it: where the kubelet (and this run) probes. */
  readonly probePort: number
  readonly logFile: string
  readonly lives: GatewayLife[] = []
  readonly #env: Record<string, string>
  readonly #cwd: string
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()

  constructor (options: { name: string, port: number, probePort: number, logFile: string, cwd: string, env: Record<string, string> }) {
    this.name = options.name
    this.port = options.port
    this.probePort = options.probePort
    this.logFile = options.logFile
    this.#cwd = options.cwd
    this.#env = options.env
  }

  get pid (): number | undefined {
    return this.#child?.pid
  }

  get running (): boolean {
    const child = this.#child
    return child !== undefined && child.exitCode === null && child.signalCode === null
  }

  get life (): GatewayLife | undefined {
    return this.lives[this.lives.length - 1]
  }

  start (): void {
    if (this.running) throw new Error(`${this.name} is already running`)
    const fd = openSync(this.logFile, 'a')
    writeSync(fd, `--- ${this.name} starting at ${new Date().toISOString()} on 127.0.0.1:${this.port}\n`)
    let child: ChildProcess
    try {
      child = spawn(process.execPath, ['dist/server/main.js'], {
        cwd: this.#cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...this.#env, PORT: String(this.port), PROBE_PORT: String(this.probePort), HOST: '127.0.0.1' },
        stdio: ['ignore', fd, fd]
      })
    } finally {
      closeSync(fd)
    }
    if (child.pid === undefined) throw new Error(`${this.name}: spawn failed`)
    const life: GatewayLife = { pid: child.pid, startedAt: now() }
    this.lives.push(life)
    this.#child = child
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        life.exitedAt = now()
        life.exit = signal ?? `exit ${code ?? '?'}`
        resolve()
      })
    })
  }

  /** Until /readyz answers 200; rejects (with the log's tail) on exit or after `timeoutMs`. */
  async waitReady (timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!this.running) throw new Error(`${this.name} exited before it was ready (${this.life?.exit ?? '?'}):\n${this.logTail()}`)
      const answer = await httpGet(this.port, '/readyz', 1000).catch(() => undefined)
      if (answer?.status === 200) return
      if (Date.now() > deadline) throw new Error(`${this.name} not ready within ${timeoutMs} ms:\n${this.logTail()}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  signal (signal: 'SIGTERM' | 'SIGKILL'): void {
    if (this.running) this.#child?.kill(signal)
  }

  /** Resolves when the current life has ended (at once if none is running); false on timeout. */
  async exited (timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
    const result = await Promise.race([this.#exited.then(() => true), timeout])
    clearTimeout(timer)
    return result
  }

  /** Open WebSocket sessions, from the instance's own /metrics (rtgw_connections_open). */
  async openConnections (): Promise<number | undefined> {
    const answer = await httpGet(this.port, '/metrics', 2000).catch(() => undefined)
    const match = answer === undefined ? null : /^rtgw_connections_open(?:\{[^}]*\})? (\d+)/m.exec(answer.body)
    return match === null ? undefined : Number(match[1])
  }

  /** SIGKILL by pid, whatever it is doing (cleanup). */
  async kill (): Promise<void> {
    if (!this.running) return
    this.#child?.kill('SIGKILL')
    await this.exited(5000)
  }

  logTail (): string {
    try {
      return readFileSync(this.logFile, 'utf8').slice(-3000)
    } catch {
      return '(no log)'
    }
  }
}
