import { readFile } from 'node:fs/promises'
import { randomUUID } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { mintDevToken } from './dev-token.js'
import { demoPage } from './demo-page.js'
import { errorBody } from '../errors.js'
import { Type } from 'typebox'

const DemoToken = Type.Object({
  token: Type.String(),
  sub: Type.String(),
  channel: Type.String()
})

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
 * GET /demo, its SDK bundle, and POST /demo/token (a dev token for a fresh demo
 * user, allowed to publish so the page can publish to itself). Registered only
 * with the development secret, which production never has.
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

  app.post('/demo/token', { schema: { response: { 200: DemoToken } } }, async () => {
    const sub = `demo-${randomUUID().slice(0, 8)}`
    const token = await mintDevToken({ secret: options.secret, sub, sessionId: randomUUID(), scope: 'gateway:publish' })
    return { token, sub, channel: `user:${sub}` }
  })
}
