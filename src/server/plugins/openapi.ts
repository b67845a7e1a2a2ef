import { createRequire } from 'node:module'
import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { FastifyInstance } from 'fastify'

/** package.json is in the image (it carries `"type": "module"`), two levels above src/ and dist/. */
function packageVersion (): string {
  try {
    return (createRequire(import.meta.url)('../../../package.json') as { version: string }).version
  } catch {
    return '0.0.0'
  }
}

const DESCRIPTION = `Realtime gateway HTTP API (SPEC §3). Every response carries \`x-request-id\`.
Every error body is \`{ error, code, message, traceId }\`: \`code\` is the stable machine code clients branch on
(each response below lists the codes it can carry), \`traceId\` is the request id.
A path that matches no route answers \`404 NOT_FOUND\` without echoing the URL.
The WebSocket protocol behind \`GET /ws\` (frames and close codes) is in docs/protocol.md.`

/**
 * OpenAPI 3.1 at /docs (Swagger UI) and /docs/json, generated from the routes' own
 * TypeBox schemas: the document cannot drift from what is validated and serialized.
 * Registered before the routes, and not encapsulated, so it sees every route.
 * 3.1 because TypeBox emits `const`, which 3.0 lacks.
 */
async function openapiPlugin (app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'realtime-gateway', version: packageVersion(), description: DESCRIPTION },
      tags: [
        { name: 'client', description: 'Browsers and apps: tickets, the WebSocket, the polling fallback' },
        { name: 'backend', description: 'Backend services: publish and disconnect (scoped service tokens)' },
        { name: 'operations', description: 'Probes and metrics' }
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A user JWT (with a session claim) or a service JWT carrying the route\'s scope' }
        }
      }
    }
  })
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: false }
  })
}

export default fp(openapiPlugin, { name: 'rtgw-openapi', fastify: '5.x' })
