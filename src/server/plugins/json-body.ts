import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { GatewayError } from '../errors.js'
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../json-depth.js'

/**
 * Fastify's JSON body parser with the SPEC §5 depth limit in front: a body nested
 * deeper than 64 levels is a 400 BAD_REQUEST (the error handler's §3 body) before
 * any route sees it, instead of a 500 from JSON.stringify recursing later.
 * Everything else is Fastify's own parser: empty bodies and invalid JSON are 400,
 * and `__proto__` / `constructor.prototype` keys are refused as by default.
 */
async function jsonBodyPlugin (app: FastifyInstance): Promise<void> {
  // 'error' for both is Fastify's default (onProtoPoisoning, onConstructorPoisoning).
  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = body as string
    if (jsonDepthExceeds(text)) {
      done(new GatewayError('BAD_REQUEST', { message: `JSON body nested deeper than ${MAX_JSON_DEPTH} levels` }), undefined)
      return
    }
    // Fastify's default parser is the callback kind: it answers through `done` and returns nothing.
    void parseJson(request, text, done)
  })
}

// fastify-plugin: the parser must apply to every route, not only inside this plugin.
export default fp(jsonBodyPlugin, { name: 'rtgw-json-body', fastify: '5.x' })
