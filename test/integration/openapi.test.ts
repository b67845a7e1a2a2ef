import t from 'tap'
import { readFileSync } from 'node:fs'
import { Validator } from '@seriousme/openapi-schema-validator'
import { startGateway } from '../helpers/gateway.js'
import { serviceToken } from '../helpers/relay.js'
import { userToken } from '../helpers/tokens.js'
import { codes, type Code } from '../../src/protocol/codes.js'
import { clientFrameSchemas, type ServerFrame } from '../../src/protocol/frames.js'

/**
 * GET /docs (SPEC §3): a valid OpenAPI document, generated from the route schemas,
 * listing every route and, per route and status, exactly the §3 codes it can answer.
 * And docs/protocol.md covers every WebSocket frame and close code (§4–§5).
 */

const gateway = await startGateway(t)

interface Operation {
  security?: unknown
  responses: Record<string, {
    description: string
    content?: Record<string, { schema: { properties?: { code?: { enum?: string[] } } } }>
  }>
}
interface Document {
  openapi: string
  info: { description: string }
  paths: Record<string, Record<string, Operation>>
  components: { securitySchemes: Record<string, unknown> }
}

const response = await fetch(`${gateway.baseUrl}/docs/json`)
const document = await response.json() as Document

/** Every route, and per status the codes of its error body (`default`: any other status). */
const OTHER: Code[] = ['BAD_REQUEST', 'PAYLOAD_TOO_LARGE', 'INTERNAL_ERROR']
const AUTH: Code[] = ['MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED']
const expected: Record<string, Record<string, Code[]>> = {
  'POST /ws-ticket': {
    400: ['INFO_TOO_LARGE'],
    401: [...AUTH, 'MISSING_SESSION', 'SESSION_REVOKED'],
    429: ['RATE_LIMITED'],
    503: ['WS_TICKET_REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'],
    default: OTHER
  },
  'GET /ws': { 400: ['BAD_REQUEST'], 403: ['ORIGIN_NOT_ALLOWED'], 426: ['UPGRADE_REQUIRED'], 503: ['OVERLOADED'], default: OTHER },
  'GET /livez': {},
  'GET /readyz': {},
  'GET /metrics': {},
  'POST /v1/publish': {
    400: ['BAD_REQUEST'],
    401: AUTH,
    403: ['INSUFFICIENT_SCOPE'],
    413: ['MESSAGE_TOO_LARGE_FOR_CLIENTS', 'PAYLOAD_TOO_LARGE'],
    503: ['REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'],
    default: OTHER
  },
  'GET /v1/poll': {
    400: ['BAD_REQUEST'],
    401: [...AUTH, 'MISSING_SESSION'],
    403: ['FORBIDDEN_CHANNEL'],
    503: ['REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'],
    default: OTHER
  },
  'POST /v1/disconnect': {
    400: ['BAD_REQUEST'],
    401: AUTH,
    403: ['INSUFFICIENT_SCOPE'],
    503: ['REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'],
    default: OTHER
  },
  'GET /v1/presence': {
    400: ['BAD_REQUEST', 'PRESENCE_NOT_ENABLED'],
    401: AUTH,
    403: ['INSUFFICIENT_SCOPE'],
    503: ['REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'],
    default: OTHER
  },
  'GET /v1/history': {
    400: ['BAD_REQUEST'],
    401: AUTH,
    403: ['INSUFFICIENT_SCOPE'],
    503: ['REDIS_NOT_READY', 'AUTH_UNAVAILABLE', 'OVERLOADED'],
    default: OTHER
  }
}
const BEARER_ROUTES = ['POST /ws-ticket', 'POST /v1/publish', 'GET /v1/poll', 'POST /v1/disconnect', 'GET /v1/history', 'GET /v1/presence']

function operation (route: string): Operation {
  const [method, path] = route.split(' ') as [string, string]
  const found = document.paths[path]?.[method.toLowerCase()]
  if (found === undefined) throw new Error(`${route} is not in the document`)
  return found
}

/** Status → the `code` enum of its JSON error body, for the statuses that have one. */
function errorCodes (op: Operation): Record<string, string[]> {
  const result: Record<string, string[]> = {}
  for (const [status, answer] of Object.entries(op.responses)) {
    const list = answer.content?.['application/json']?.schema.properties?.code?.enum
    if (list !== undefined) result[status] = list
  }
  return result
}

await t.test('GET /docs/json is a valid OpenAPI 3.1 document', async (t) => {
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^application\/json/)
  t.equal(document.openapi, '3.1.0')
  const validator = new Validator()
  const result = await validator.validate(structuredClone(document) as unknown as Record<string, unknown>)
  t.equal(result.valid, true, JSON.stringify(result.errors))

  // The validator can fail: a response without its required description is refused.
  const broken = structuredClone(document) as unknown as { paths: Record<string, Record<string, { responses: Record<string, Record<string, unknown>> }>> }
  delete broken.paths['/livez']!.get!.responses['200']!.description
  t.equal((await new Validator().validate(broken as unknown as Record<string, unknown>)).valid, false, 'a broken copy is invalid')
})

await t.test('every route is listed, and nothing else', async (t) => {
  const listed = Object.entries(document.paths).flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method.toUpperCase()} ${path}`))
  t.strictSame(listed.sort(), Object.keys(expected).sort())
})

await t.test('each route lists exactly the error codes it can answer, per status', async (t) => {
  for (const [route, statuses] of Object.entries(expected)) {
    const op = operation(route)
    t.strictSame(errorCodes(op), statuses, route)
    for (const [status, list] of Object.entries(statuses)) {
      for (const code of list) t.match(op.responses[status]!.description, code, `${route} ${status} describes ${code}`)
    }
  }
})

await t.test('every HTTP error code of protocol/codes.ts is in the document', async (t) => {
  const documented = new Set(Object.keys(expected).flatMap((route) => Object.values(errorCodes(operation(route))).flat()))
  const httpCodes = (Object.keys(codes) as Code[]).filter((code) => (codes[code] as { status?: number }).status !== undefined)
  for (const code of httpCodes) {
    if (code === 'NOT_FOUND') t.match(document.info.description, /404 NOT_FOUND/, 'NOT_FOUND: any unknown path, in the description')
    else t.ok(documented.has(code), `${code} is listed by a route`)
  }
  // And each is listed under the status the table gives it.
  for (const [route, statuses] of Object.entries(expected)) {
    for (const [status, list] of Object.entries(statuses)) {
      if (status === 'default') continue
      for (const code of list) t.equal((codes[code] as { status?: number }).status, Number(status), `${route}: ${code} is a ${status}`)
    }
  }
})

await t.test('bearer security scheme on the authenticated routes only', async (t) => {
  t.strictSame(document.components.securitySchemes.bearerAuth, {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'A user JWT (with a session claim) or a service JWT carrying the route\'s scope'
  })
  for (const route of Object.keys(expected)) {
    t.strictSame(operation(route).security, BEARER_ROUTES.includes(route) ? [{ bearerAuth: [] }] : undefined, route)
  }
})

await t.test('real answers carry a status and code the document lists for their route', async (t) => {
  const listed = (route: string, status: number, code: string): boolean => {
    const statuses = errorCodes(operation(route))
    return (statuses[String(status)] ?? statuses.default ?? []).includes(code)
  }
  const cases: Array<[string, string, RequestInit]> = [
    ['POST /ws-ticket', '/ws-ticket', { method: 'POST' }],
    ['POST /ws-ticket', '/ws-ticket', { method: 'POST', headers: { authorization: 'Bearer nope' } }],
    ['GET /ws', '/ws', {}],
    ['POST /v1/publish', '/v1/publish', { method: 'POST', headers: { authorization: `Bearer ${await userToken()}`, 'content-type': 'application/json' }, body: '{"channel":"a","data":1}' }],
    ['POST /v1/publish', '/v1/publish', { method: 'POST', headers: { authorization: `Bearer ${await serviceToken()}`, 'content-type': 'application/json' }, body: '{"channel":"bad channel"}' }],
    ['POST /v1/disconnect', '/v1/disconnect', { method: 'POST', headers: { authorization: `Bearer ${await serviceToken('gateway:disconnect')}`, 'content-type': 'application/xml' }, body: '<x/>' }],
    ['GET /v1/poll', '/v1/poll?channel=user:bob', { headers: { authorization: `Bearer ${await userToken()}` } }]
  ]
  const seen: string[] = []
  for (const [route, path, init] of cases) {
    const answer = await fetch(`${gateway.baseUrl}${path}`, init)
    const body = await answer.json() as { code: string }
    seen.push(`${answer.status} ${body.code}`)
    t.ok(listed(route, answer.status, body.code), `${route}: ${answer.status} ${body.code} is documented`)
  }
  t.strictSame(seen, ['401 MISSING_TOKEN', '401 INVALID_TOKEN', '426 UPGRADE_REQUIRED', '403 INSUFFICIENT_SCOPE', '400 BAD_REQUEST', '415 BAD_REQUEST', '403 FORBIDDEN_CHANNEL'])
})

await t.test('GET /docs serves the UI; its 404s never echo the URL', async (t) => {
  const page = await fetch(`${gateway.baseUrl}/docs`)
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /^text\/html/)
  t.match(await page.text(), /swagger-ui/)
  t.equal((await fetch(`${gateway.baseUrl}/docs/static/swagger-ui.css`)).status, 200)
  const yaml = await fetch(`${gateway.baseUrl}/docs/yaml`)
  t.equal(yaml.status, 200)
  t.match(await yaml.text(), /^openapi: 3\.1\.0\n/)
  for (const path of ['/docs/static/missing.js?ticket=supersecretticket', '/docs/nothing?ticket=supersecretticket', '/nothing?ticket=supersecretticket']) {
    const answer = await fetch(`${gateway.baseUrl}${path}`)
    const text = await answer.text()
    t.equal(answer.status, 404, path)
    t.notOk(text.includes('supersecretticket'), `${path}: the 404 does not echo the query`)
    t.match(JSON.parse(text), { error: 'NOT_FOUND', code: 'NOT_FOUND' })
  }
})

await t.test('docs/protocol.md documents every close code and every frame type', async (t) => {
  const protocol = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8')
  const closeTable = protocol.slice(protocol.indexOf('## Close codes'))
  t.ok(closeTable.length > 0 && protocol.includes('## Close codes'), 'a Close codes section')
  const rows = closeTable.split('\n').filter((line) => line.startsWith('| '))
  for (const code of Object.keys(codes) as Code[]) {
    const close = (codes[code] as { close?: number }).close
    if (close === undefined) continue
    t.ok(rows.some((row) => row.startsWith(`| ${close} |`) && row.includes(`\`${code}\``)), `close ${close} ${code} has its row`)
  }
  // Exhaustive by type: a new server frame type fails to compile until it is listed here.
  const serverFrames: Record<ServerFrame['type'] | 'message', true> = {
    session_established: true, pong: true, error: true, subscribed: true, unsubscribed: true, ack: true, message: true,
    published: true, join: true, leave: true, presence: true
  }
  for (const type of [...Object.keys(clientFrameSchemas), ...Object.keys(serverFrames)]) {
    t.ok(protocol.includes(`{"type":"${type}"`), `frame ${type} is documented`)
  }
})
