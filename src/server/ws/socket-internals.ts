import type { Writable } from 'node:stream'
import type { WebSocket } from 'ws'

/**
 * What the gateway reaches into on ws's WebSocket (ws 8): its TCP socket, its frame
 * parser (a Writable) and its sender's state. Read structurally and checked at each
 * use: with another ws layout both helpers below do nothing and ws's public API is
 * used as before.
 */
interface WsInternals {
  readonly _socket?: (Writable & { readonly writable: boolean }) | null
  readonly _receiver?: Writable | null
  readonly _sender?: { readonly _state?: number, readonly _queue?: readonly unknown[] } | null
}

/** ws's Sender state when nothing is being compressed or queued (ws/lib/sender.js DEFAULT). */
const SENDER_IDLE = 0

/**
 * `end()` for a stream that may already be finished or destroyed: then it does
 * nothing, as Writable.end does without a callback, minus the ERR_STREAM_ALREADY_FINISHED
 * / ERR_STREAM_DESTROYED error object it builds and drops (a stack trace each).
 */
function endUnlessFinished (this: Writable, ...args: unknown[]): Writable {
  // Only the bare `end()` ws makes: with a chunk or a callback the error has a reader.
  if (args.length === 0 && (this.writableFinished || this.destroyed)) return this
  return (Object.getPrototypeOf(this) as { end: (...rest: unknown[]) => Writable }).end.apply(this, args)
}

/**
 * On a client-initiated close ws calls `end()` on its parser and on the TCP socket
 * after both finished (ws/lib/websocket.js socketOnEnd, socketOnClose): up to three
 * thrown-away error objects per connection, about 5 % of a connect's CPU (issue 14).
 * Both streams get an own `end` that skips the call when it could only fail.
 */
export function quietClose (socket: WebSocket): void {
  const internals = socket as unknown as WsInternals
  for (const stream of [internals._socket, internals._receiver]) {
    if (stream !== null && stream !== undefined && typeof stream.end === 'function') {
      Object.defineProperty(stream, 'end', { value: endUnlessFinished, writable: true, configurable: true })
    }
  }
}

/**
 * Writes an already framed message (prepared-frame.ts) straight to the TCP socket,
 * as ws's Sender would after framing it, when the sender is idle (nothing queued
 * behind a compression or a blob read: order is kept). Returns false when it could
 * not, and the caller sends through ws instead.
 */
export function writeFramed (socket: WebSocket, frame: Buffer): boolean {
  const internals = socket as unknown as WsInternals
  const sender = internals._sender
  const tcp = internals._socket
  if (sender === null || sender === undefined || sender._state !== SENDER_IDLE || (sender._queue?.length ?? 0) !== 0) return false
  if (tcp === null || tcp === undefined || !tcp.writable) return false
  tcp.write(frame)
  return true
}
