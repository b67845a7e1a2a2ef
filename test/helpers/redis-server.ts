import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, connect } from 'node:net'
import { once } from 'node:events'

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

/** Runs a command to completion; its output, or an error with the output when it fails. */
export async function run (command: string, args: string[]): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${String(code)}: ${output}`)
  return output
}

/** Polls `check` (a throw counts as not yet) until it holds; the bound only catches hangs. */
export async function waitFor (check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what}: not in time`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function answersPing (port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.setTimeout(500)
    socket.once('connect', () => { socket.write('PING\r\n') })
    socket.once('data', (data) => { socket.destroy(); resolve(data.toString().startsWith('+PONG')) })
    socket.once('error', () => { resolve(false) })
    socket.once('timeout', () => { socket.destroy(); resolve(false) })
  })
}

/** A redis-server process owned by one test file: started on a free port, stopped by pid. */
export class RedisServer {
  readonly port: number
  readonly #args: readonly string[]
  #process: ChildProcess | undefined

  private constructor (port: number, args: readonly string[]) {
    this.port = port
    this.#args = args
  }

  /**
   * On `port` (a free one by default); `args` are extra redis-server options, e.g. an ACL `--user`.
   * The default user must keep answering PING without a password: that is how start() sees it up.
   */
  static async start (port?: number, options: { readonly args?: readonly string[] } = {}): Promise<RedisServer> {
    const server = new RedisServer(port ?? await freePort(), options.args ?? [])
    await server.start()
    return server
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid (): number | undefined {
    return this.#process?.pid
  }

  /** Starts (again) on the same port, empty. */
  async start (): Promise<void> {
    if (this.#process !== undefined) throw new Error('already running')
    const child = spawn('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', ...this.#args
    ], { stdio: 'ignore' })
    this.#process = child
    const deadline = Date.now() + 10_000
    while (!(await answersPing(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        // A server that runs but never answers (e.g. requirepass: PING gets NOAUTH) must not outlive the test.
        await this.kill()
        throw new Error(`redis-server on ${this.port} did not start`)
      }
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }

  /** SIGKILL: the gateway sees the connection drop with no goodbye. */
  async kill (): Promise<void> {
    const child = this.#process
    if (child === undefined) return
    this.#process = undefined
    if (child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  async stop (): Promise<void> {
    await this.kill()
  }
}
