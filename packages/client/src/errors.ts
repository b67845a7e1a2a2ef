import { codes, type ClientAction, type CodeDefinition } from '../../../src/protocol/codes.js'

/** Base of the SDK's typed errors: a machine `code` and what to do about it. */
export class GatewayClientError extends Error {
  override name = 'GatewayClientError'
  readonly code: string
  /** HTTP status or WebSocket close code behind it, when there is one. */
  readonly status?: number
  readonly action: ClientAction

  constructor (code: string, message: string, options: { status?: number, cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = options.status
    const definition: CodeDefinition | undefined = (codes as Record<string, CodeDefinition>)[code]
    this.action = definition?.action ?? 'retry'
  }
}

/** A ticket could not be had (engine not ready after the retries, rate limited, unexpected answer). */
export class TicketError extends GatewayClientError {
  override name = 'TicketError'
}

/** The credentials are refused: a fresh JWT did not help, or the token has no session. */
export class AuthenticationError extends GatewayClientError {
  override name = 'AuthenticationError'
}

/** The gateway could not be reached, or the connection failed. */
export class ConnectionError extends GatewayClientError {
  override name = 'ConnectionError'
}

/** Anything thrown on the way to a socket, as the SDK's typed error (naming `url` when known). */
export function asClientError (err: unknown, url?: string): GatewayClientError {
  if (err instanceof GatewayClientError) return err
  const what = redactTicket(err instanceof Error ? causeText(err) : String(err))
  const message = url === undefined ? what : `could not connect to ${describeUrl(url)}${what === '' ? '' : ` (${what})`}`
  return new ConnectionError('NETWORK_ERROR', message, { cause: safeCause(err) })
}

/**
 * `url` as error messages may show it: no query (a WebSocket URL carries `?ticket=`,
 * a single-use credential, SPEC §4), no fragment, no user info.
 */
export function describeUrl (url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return url.replace(/[?#].*$/s, '')
  }
}

/** Any `ticket=…` in `text`, blanked: what a platform error says about a URL must not leak it. */
export function redactTicket (text: string): string {
  return text.replace(/ticket=[^&\s'"]*/g, 'ticket=[redacted]')
}

/** The underlying cause in words, with its own cause (fetch's "fetch failed" says little alone). */
export function causeText (cause: unknown): string {
  if (!(cause instanceof Error)) return ''
  const inner = cause.cause instanceof Error && cause.cause.message !== '' ? `: ${cause.cause.message}` : ''
  return redactTicket(`${cause.message}${inner}`)
}

/** A cause safe to keep: an Error whose message shows a ticket is replaced by one that does not. */
export function safeCause<Cause> (cause: Cause): Cause | Error {
  if (cause instanceof Error && cause.message.includes('ticket=')) return new Error(redactTicket(cause.message))
  return cause
}
