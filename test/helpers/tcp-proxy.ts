import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

/**
 * A TCP forwarder standing in for a load balancer or a flaky network in client
 * tests: `target` picks the instance new connections go to (like an endpoint list
 * that drops a draining pod), `dropAll()` cuts every connection without a close
 * handshake, and `freeze()` silently swallows traffic (a dead peer that never says so).
 */
export class TcpProxy {
  target: number
  readonly #server: Server
  readonly #pairs = new Set<[Socket, Socket]>()
  #frozen: 'none' | 'both' | 'downstream' = 'none'

  private constructor (server: Server, target: number) {
    this.#server = server
    this.target = target
  }

  static async start (target: number): Promise<TcpProxy> {
    const server = createServer()
    const proxy = new TcpProxy(server, target)
    server.on('connection', (client) => { proxy.#forward(client) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return proxy
  }

  get port (): number {
    const address = this.#server.address()
    if (address === null || typeof address === 'string') throw new Error('not listening')
    return address.port
  }

  get url (): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** Connections currently forwarded. */
  get connections (): number {
    return this.#pairs.size
  }

  dropAll (): void {
    for (const [client, upstream] of this.#pairs) {
      client.resetAndDestroy()
      upstream.destroy()
    }
    this.#pairs.clear()
  }

  /** Swallows traffic in both directions, or only what the server sends (`downstream`). */
  freeze (direction: 'both' | 'downstream' = 'both'): void {
    this.#frozen = direction
  }

  thaw (): void {
    this.#frozen = 'none'
  }

  async close (): Promise<void> {
    this.dropAll()
    await new Promise((resolve) => this.#server.close(resolve))
  }

  #forward (client: Socket): void {
    const upstream = createConnection({ port: this.target, host: '127.0.0.1' })
    const pair: [Socket, Socket] = [client, upstream]
    this.#pairs.add(pair)
    const relay = (from: Socket, to: Socket, direction: 'upstream' | 'downstream'): void => {
      from.on('data', (chunk) => {
        const swallowed = this.#frozen === 'both' || this.#frozen === direction
        if (!swallowed && !to.destroyed) to.write(chunk)
      })
      from.on('close', () => {
        this.#pairs.delete(pair)
        to.destroy()
      })
      from.on('error', () => { to.destroy() })
    }
    relay(client, upstream, 'upstream')
    relay(upstream, client, 'downstream')
  }
}
