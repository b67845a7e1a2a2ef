import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer } from 'node:net'

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('no free port')
  return address.port
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

/**
 * A throw-away redis-server for one benchmark run: a free loopback port, no
 * persistence (`--save '' --appendonly no`), stopped by its own pid. The shared
 * Redis on 6379 is never touched.
 */
export class RedisProcess {
  readonly port: number
  readonly #child: ChildProcess

  private constructor (port: number, child: ChildProcess) {
    this.port = port
    this.#child = child
  }

  static async start (): Promise<RedisProcess> {
    const port = await freePort()
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'
    ], { stdio: 'ignore' })
    const redis = new RedisProcess(port, child)
    const deadline = Date.now() + 10_000
    while (!(await answersPing(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await redis.stop()
        throw new Error(`redis-server on ${port} did not start (is redis-server on PATH?)`)
      }
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    return redis
  }

  get url (): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid (): number {
    if (this.#child.pid === undefined) throw new Error('redis-server has no pid')
    return this.#child.pid
  }

  /** SIGKILL by pid (nothing to persist), then waits for the exit. */
  async stop (): Promise<void> {
    const child = this.#child
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGKILL')
    await exited
  }
}
