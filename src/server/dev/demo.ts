import { readFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { mintChannelToken, mintDevToken } from './dev-token.js'
import { demoPage } from './demo-page.js'
import { BearerHeaders, OtherErrors, PublishResult, errorResponses } from '../../protocol/http.js'
import { bearerToken } from '../auth/token-verifier.js'
import { errorBody } from '../errors.js'

/** The demo's two-user room: a presence channel on the development secret (app.ts), opened by a subscription token. */
export const DEMO_ROOM = 'demo:room'

const DemoToken = Type.Object({
  token: Type.String(),
  sub: Type.String(),
  channel: Type.String(),
  /** The room, and a subscription token (SPEC §9) for it with `publish: true`. */
  room: Type.String(),
  roomToken: Type.String()
})

/** `user`: the demo user to be (the page's `?user=`), so two tabs can be two people; a fresh one without. */
const DemoTokenBody = Type.Union([
  Type.Object({ user: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$' })) }, { additionalProperties: false }),
  Type.Null()
])

/** Only the data: the channel is always the caller's own, so the body cannot name one. */
const DemoPublishBody = Type.Object({
  data: Type.Unknown({ description: 'Any JSON value, delivered verbatim to user:<sub>' })
}, { additionalProperties: false })

export interface DemoOptions {
  /** The development secret (SPEC §8); the demo only exists when the gateway made one. */
  readonly secret: string
}

// The browser bundle is built by `npm run build` (scripts/build-assets.mjs) into
// dist/browser; this file runs from src/ under tsx or from dist/ after the build.
const bundleCandidates = [
  new URL('../../browser/realtime-gateway.js', import.meta.url),
  new URL('../../../dist/browser/realtime-gateway.js', import.meta.url)
]

async function readBundle (): Promise<string | undefined> {
  for (const candidate of bundleCandidates) {
    try {
      return await readFile(candidate, 'utf8')
    } catch {
      // try the next location
    }
  }
  return undefined
}

/**
 * GET /demo, its SDK bundle, POST /demo/token (a dev token for a demo user, fresh or
 * named, with a subscription token for the demo room) and POST /demo/publish (that
 * user publishes to its own channel). Registered only
 * with the development secret, which production never has.
 *
 * Anyone who reaches the port can mint a demo token, so a demo token is an ordinary
 * user token (sub, session, exp) with no scope: it cannot use /v1/publish. The page
 * publishes to the room with the `publish` frame its room token allows (SPEC §9);
 * /demo/publish can only reach `user:<sub>`. Naming any user is fine here: dev only.
 */
export default async function demoRoutes (app: FastifyInstance, options: DemoOptions): Promise<void> {
  app.get('/demo', async (_request, reply) => {
    return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(demoPage)
  })

  app.get('/demo/realtime-gateway.js', async (request, reply) => {
    const bundle = await readBundle()
    if (bundle === undefined) {
      return await reply.code(404).send(errorBody('NOT_FOUND', request.id, 'The browser bundle is not built: run npm run build'))
    }
    return await reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-store').send(bundle)
  })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/demo/token', {
    schema: { body: Type.Optional(DemoTokenBody), response: { 200: DemoToken, ...errorResponses('BAD_REQUEST'), default: OtherErrors } }
  }, async (request) => {
    const sub = request.body?.user ?? `demo-${randomUUID().slice(0, 8)}`
    const token = await mintDevToken({ secret: options.secret, sub, sessionId: randomUUID() })
    // The user token stays a plain one (no scope, no patterns); the room comes with a token of its own.
    const roomToken = await mintChannelToken({ secret: options.secret, sub, channel: DEMO_ROOM, publish: true })
    return { token, sub, channel: `user:${sub}`, room: DEMO_ROOM, roomToken }
  })

  app.withTypeProvider<TypeBoxTypeProvider>().post('/demo/publish', {
    schema: {
      headers: BearerHeaders,
      body: DemoPublishBody,
      response: {
        200: PublishResult,
        ...errorResponses('BAD_REQUEST', 'MISSING_TOKEN', 'INVALID_TOKEN', 'TOKEN_EXPIRED', 'MESSAGE_TOO_LARGE_FOR_CLIENTS', 'PAYLOAD_TOO_LARGE', 'REDIS_NOT_READY'),
        default: OtherErrors
      }
    }
  }, async (request) => {
    const { sub } = await app.verifyToken(bearerToken(request.headers.authorization))
    // The same path as /v1/publish (frame limit, history, fan-out), to the caller's own channel only.
    return await app.publisher.publish(`user:${sub}`, request.body.data)
  })
}
