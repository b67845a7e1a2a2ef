import { causeText, ConnectionError, describeUrl } from './errors.js'

export interface GatewayRequestOptions {
  readonly fetch: typeof fetch
  readonly url: string
  readonly init?: Omit<RequestInit, 'signal'>
  /** Past this the request is aborted: an answer lost on a dead connection would otherwise hang its callers. */
  readonly timeoutMs: number
  /** The caller giving up (e.g. polling stopped) aborts the request too. */
  readonly signal?: AbortSignal
}

/** The error body of a refused request (SPEC §3), or nothing when it is not JSON. */
export interface GatewayErrorBody { readonly code?: string, readonly message?: string }

/**
 * One HTTP request to the gateway, bounded in time. Every failure to get an answer
 * (network, timeout, abort) is the same typed NETWORK_ERROR, so callers only ever
 * deal with an answer or a ConnectionError.
 */
export async function gatewayRequest (options: GatewayRequestOptions): Promise<Response> {
  const request = new AbortController()
  const cancel = (): void => { request.abort() }
  const timer = setTimeout(cancel, options.timeoutMs)
  options.signal?.addEventListener('abort', cancel)
  try {
    return await options.fetch(options.url, { ...options.init, signal: request.signal })
  } catch (err) {
    // Aborted by the timer, not by the caller: say so (the abort error itself says only "aborted").
    const timedOut = request.signal.aborted && options.signal?.aborted !== true
    const why = timedOut ? `no answer within ${options.timeoutMs} ms` : causeText(err)
    const target = `${options.init?.method ?? 'GET'} ${describeUrl(options.url)}`
    throw new ConnectionError('NETWORK_ERROR', `the gateway could not be reached: ${target}${why === '' ? '' : ` (${why})`}`, { cause: err })
  } finally {
    clearTimeout(timer)
    options.signal?.removeEventListener('abort', cancel)
  }
}

/** The answer's error code and message, with the status standing in for what the body lacks. */
export async function gatewayErrorOf (response: Response, what: string): Promise<{ code: string, message: string }> {
  const body = await response.json().catch(() => ({})) as GatewayErrorBody
  return { code: body.code ?? `HTTP_${response.status}`, message: body.message ?? `${what} failed with ${response.status}` }
}

/**
 * The answer's Retry-After in ms (seconds, already jittered by the gateway), capped at
 * a minute so a wrong header cannot park a client; undefined when absent or not a
 * positive number.
 */
export function retryAfterMs (response: Pick<Response, 'headers'>): number | undefined {
  const seconds = Number(response.headers.get('retry-after'))
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 60) * 1000 : undefined
}
