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

/** Anything thrown on the way to a socket, as the SDK's typed error. */
export function asClientError (err: unknown): GatewayClientError {
  if (err instanceof GatewayClientError) return err
  return new ConnectionError('NETWORK_ERROR', err instanceof Error ? err.message : String(err), { cause: err })
}
