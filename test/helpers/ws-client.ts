import WebSocket from 'ws'

export interface ClosedEvent { code: number, reason: string }

/**
 * A `ws` client that records every frame from the first byte (listeners attached
 * before open), so tests can await frames and the close in order.
 */
export class TestClient {
  readonly socket: WebSocket
  readonly frames: Array<Record<string, unknown>> = []
  readonly closed: Promise<ClosedEvent>
  readonly opened: Promise<boolean>
  #waiters: Array<() => void> = []

  constructor (url: string, options: WebSocket.ClientOptions = {}) {
    this.socket = new WebSocket(url, options)
    this.socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Record<string, unknown>)
      for (const wake of this.#waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) => {
      this.socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const wake of this.#waiters.splice(0)) wake()
      })
    })
    this.opened = new Promise((resolve) => {
      this.socket.once('open', () => { resolve(true) })
      this.socket.once('unexpected-response', (_request, response) => {
        this.unexpectedStatus = response.statusCode
        resolve(false)
        this.socket.terminate()
      })
      this.socket.once('error', () => { resolve(false) })
    })
  }

  unexpectedStatus: number | undefined

  send (frame: unknown): void {
    this.socket.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The `index`-th frame received (0-based), waiting for it if needed. */
  async frame (index: number, timeoutMs = 5000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs
    while (this.frames.length <= index) {
      if (Date.now() > deadline || this.socket.readyState === WebSocket.CLOSED) {
        throw new Error(`no frame #${index} (got ${JSON.stringify(this.frames)})`)
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
    return this.frames[index]!
  }

  close (): void {
    this.socket.close()
  }
}
