import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { once } from 'node:events'

/**
 * A TCP forwarder standing in for a load balancer or a flaky network in client
 * tests: `target` picks the instance new connections go to (like an endpoint list
 * that drops a draining pod), `dropAll()` cuts every connection without a close
 * handshake, and `freeze()` silently swallows traffic (a dead peer that never says so).
 * `deafen(pattern)` makes only the connections whose client bytes so far match the
 * pattern deaf: open, requests still forwarded, nothing forwarded back (a "deaf"
 * Redis subscriber, SPEC §14: e.g. /SUBSCRIBE/i picks the pub/sub connection).
 */
export class TcpProxy {
  target: number
  readonly #server: Server
  readonly #pairs = new Set<[Socket, Socket]>()
  /** What each client sent so far (its first 64 KiB), for deafen(). */
  readonly #sent = new Map<Socket, string>()
  readonly #deaf = new Set<Socket>()
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

  /** Deafens every open connection whose client bytes so far match `pattern`; how many. */
  deafen (pattern: RegExp): number {
    let count = 0
    for (const [client] of this.#pairs) {
      if (!pattern.test(this.#sent.get(client) ?? '')) continue
      this.#deaf.add(client)
      count += 1
    }
    return count
  }

  /** Open connections whose client bytes so far match `pattern`. */
  matching (pattern: RegExp): number {
    return [...this.#pairs].filter(([client]) => pattern.test(this.#sent.get(client) ?? '')).length
  }

  /** Cuts (no close handshake) the open connections whose client bytes so far match `pattern`; how many. */
  drop (pattern: RegExp): number {
    let count = 0
    for (const pair of [...this.#pairs]) {
      if (!pattern.test(this.#sent.get(pair[0]) ?? '')) continue
      pair[0].resetAndDestroy()
      pair[1].destroy()
      this.#pairs.delete(pair)
      count += 1
    }
    return count
  }

  /** Open connections deafened and not closed yet. */
  get deafConnections (): number {
    return [...this.#pairs].filter(([client]) => this.#deaf.has(client)).length
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
      from.on('data', (chunk: Buffer) => {
        if (direction === 'upstream') {
          const sent = this.#sent.get(client) ?? ''
          if (sent.length < 65536) this.#sent.set(client, sent + chunk.toString('latin1'))
        }
        const swallowed = this.#frozen === 'both' || this.#frozen === direction || (direction === 'downstream' && this.#deaf.has(client))
        if (!swallowed && !to.destroyed) to.write(chunk)
      })
      from.on('close', () => {
        this.#pairs.delete(pair)
        this.#sent.delete(client)
        this.#deaf.delete(client)
        to.destroy()
      })
      from.on('error', () => { to.destroy() })
    }
    relay(client, upstream, 'upstream')
    relay(upstream, client, 'downstream')
  }
}
