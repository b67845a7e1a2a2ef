/**
 * The part of the WebSocket API the SDK uses. Browsers' `WebSocket` and the `ws`
 * package both fit it, so Node 20 (which has no global WebSocket) injects `ws`.
 */

export interface MessageEventLike { readonly data: unknown }
export interface CloseEventLike { readonly code: number, readonly reason: string }

// Handlers are declared bivariantly (as methods are) so that implementations whose
// event types carry more fields than these still fit.
type Handler<Event> = { bivarianceHack (event: Event): void }['bivarianceHack']

export interface WebSocketLike {
  readonly readyState: number
  onopen: Handler<unknown> | null
  onmessage: Handler<MessageEventLike> | null
  onclose: Handler<CloseEventLike> | null
  onerror: Handler<unknown> | null
  send (data: string): void
  close (code?: number, reason?: string): void
}

export type WebSocketConstructor = new (url: string) => WebSocketLike

/** `readyState` of an open socket, the same in every implementation. */
export const OPEN = 1
