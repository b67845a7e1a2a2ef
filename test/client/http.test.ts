import t from 'tap'
import { gatewayErrorOf, gatewayRequest, retryAfterMs } from '../../packages/client/src/http.js'
import { ConnectionError, describeUrl, redactTicket } from '../../packages/client/src/errors.js'

function answer (headers: Record<string, string>): Pick<Response, 'headers'> {
  return { headers: new Headers(headers) }
}

await t.test('Retry-After: seconds to ms, capped at a minute; absent or not positive is undefined', async (t) => {
  t.equal(retryAfterMs(answer({ 'retry-after': '2' })), 2000)
  t.equal(retryAfterMs(answer({ 'retry-after': '1.5' })), 1500)
  t.equal(retryAfterMs(answer({ 'retry-after': '600' })), 60_000)
  t.equal(retryAfterMs(answer({})), undefined)
  t.equal(retryAfterMs(answer({ 'retry-after': '' })), undefined)
  t.equal(retryAfterMs(answer({ 'retry-after': '0' })), undefined)
  t.equal(retryAfterMs(answer({ 'retry-after': '-3' })), undefined)
  t.equal(retryAfterMs(answer({ 'retry-after': 'soon' })), undefined)
  t.equal(retryAfterMs(answer({ 'retry-after': 'Infinity' })), undefined)
})

await t.test('a network failure is a ConnectionError NETWORK_ERROR naming the URL (no query) and the cause', async (t) => {
  const cause = new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 10.0.0.1:443') })
  const error = await gatewayRequest({ fetch: async () => { throw cause }, url: 'https://gateway.example/v1/poll?channel=a&since=E1:2', init: { method: 'POST' }, timeoutMs: 1000 }).catch((err: unknown) => err)
  t.ok(error instanceof ConnectionError)
  t.match(error, { code: 'NETWORK_ERROR', cause })
  t.equal((error as Error).message, 'the gateway could not be reached: POST https://gateway.example/v1/poll (fetch failed: connect ECONNREFUSED 10.0.0.1:443)')
})

await t.test('describeUrl drops query, fragment and user info; redactTicket blanks any ticket', async (t) => {
  t.equal(describeUrl('ws://user:pw@gw:8080/ws?ticket=secret#x'), 'ws://gw:8080/ws')
  t.equal(describeUrl('not a url?ticket=secret'), 'not a url')
  t.equal(redactTicket("Invalid URL: 'ws://gw/ws?ticket=abc.def&x=1'"), "Invalid URL: 'ws://gw/ws?ticket=[redacted]&x=1'")
})

/** fetch that never answers until its signal aborts. */
const hanging: typeof fetch = async (_input, init) => await new Promise<Response>((_resolve, reject) => {
  init?.signal?.addEventListener('abort', () => { reject(new Error('aborted')) })
})

await t.test('no answer within the timeout aborts the request: NETWORK_ERROR', async (t) => {
  const started = Date.now()
  const error = await gatewayRequest({ fetch: hanging, url: 'http://gateway/x', timeoutMs: 50 }).catch((err: unknown) => err)
  t.match(error, { code: 'NETWORK_ERROR', message: 'the gateway could not be reached: GET http://gateway/x (no answer within 50 ms)' })
  t.ok((error as Error).cause instanceof Error)
  t.ok(Date.now() - started < 1000)
})

await t.test("the caller's signal aborts the request too", async (t) => {
  const caller = new AbortController()
  const pending = gatewayRequest({ fetch: hanging, url: 'http://gateway/x', timeoutMs: 60_000, signal: caller.signal }).catch((err: unknown) => err)
  caller.abort()
  t.match(await pending, { code: 'NETWORK_ERROR' })
})

await t.test('the request is passed on as given, with the abort signal added', async (t) => {
  const seen: Array<{ url: string, method?: string, signal: boolean }> = []
  const response = await gatewayRequest({
    fetch: async (input, init) => { seen.push({ url: String(input), method: init?.method, signal: init?.signal instanceof AbortSignal }); return new Response('{}') },
    url: 'http://gateway/ws-ticket',
    init: { method: 'POST' },
    timeoutMs: 1000
  })
  t.equal(response.status, 200)
  t.same(seen, [{ url: 'http://gateway/ws-ticket', method: 'POST', signal: true }])
})

await t.test('error bodies: code and message, or the status in their place', async (t) => {
  t.same(await gatewayErrorOf(new Response(JSON.stringify({ code: 'OVERLOADED', message: 'busy' }), { status: 503 }), 'poll'), { code: 'OVERLOADED', message: 'busy' })
  t.same(await gatewayErrorOf(new Response('<html>', { status: 502 }), 'poll'), { code: 'HTTP_502', message: 'poll failed with 502' })
})
