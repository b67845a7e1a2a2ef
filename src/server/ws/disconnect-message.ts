import type { DisconnectBody } from '../../protocol/http.js'

/**
 * The control message of SPEC §3 /v1/disconnect, as every instance receives it over
 * the engine's control channel: whose sockets to close, and for how long to ban them.
 */
export interface DisconnectMessage {
  readonly target: { readonly userId?: string, readonly sessionId?: string }
  readonly revokeSeconds: number | undefined
}

/** The text broadcast for a validated /v1/disconnect body. */
export function formatDisconnectMessage (body: DisconnectBody): string {
  return JSON.stringify({ kind: 'disconnect', ...body })
}

/** A control message's field, if it is a non-empty string. */
function stringOf (value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined
}

/**
 * Undefined for anything else on the control channel: other kinds, or text another
 * (older or newer) instance sent that this one cannot read, which is ignored rather
 * than allowed to break the listener.
 */
export function parseDisconnectMessage (text: string): DisconnectMessage | undefined {
  let message: unknown
  try {
    message = JSON.parse(text)
  } catch {
    return undefined
  }
  if (message === null || typeof message !== 'object' || !('kind' in message) || message.kind !== 'disconnect') return undefined
  const fields: Record<string, unknown> = { ...message }
  const target = { userId: stringOf(fields.userId), sessionId: stringOf(fields.sessionId) }
  const revokeSeconds = typeof fields.revokeSeconds === 'number' && fields.revokeSeconds > 0 ? fields.revokeSeconds : undefined
  return { target, revokeSeconds }
}
