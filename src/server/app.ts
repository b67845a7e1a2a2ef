import Fastify, { type FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import type { Engine, EngineLogger } from './engine/engine.js'
import { MemoryEngine } from './engine/memory-engine.js'
import { RedisEngine, type RedisCommandObserver } from './engine/redis-engine.js'
import { createTokenVerifier, type TokenVerifier } from './auth/token-verifier.js'
import { GatewayMetrics } from './metrics/gateway-metrics.js'
import { TicketService } from './tickets/ticket-service.js'
import { Revocations } from './tickets/revocations.js'
import { Hub } from './ws/hub.js'
import { ChannelRelay } from './channels/channel-relay.js'
import { ChannelPublisher } from './channels/publisher.js'
import { LongPoll } from './channels/long-poll.js'
import { GatewayLogController, loggerOptions, requestIdOf } from './logging.js'
import { errorBody } from './errors.js'
import enginePlugin from './plugins/engine.js'
import errorHandlerPlugin, { frameworkErrorHandler } from './plugins/error-handler.js'
import jsonBodyPlugin from './plugins/json-body.js'
import healthRoutes from './routes/health.js'
import metricsPlugin from './plugins/metrics.js'
import openapiPlugin from './plugins/openapi.js'
import admissionPlugin from './plugins/admission.js'
import corsPlugin from './plugins/cors.js'
import probePortPlugin from './plugins/probe-port.js'
import ticketLimitsPlugin from './plugins/ticket-limits.js'
import ticketRoute from './routes/ticket.js'
import wsRoute from './routes/ws.js'
import v1Routes from './routes/v1/index.js'
import demoRoutes from './dev/demo.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
    tickets: TicketService
    verifyToken: TokenVerifier
    hub: Hub
    relay: ChannelRelay
    publisher: ChannelPublisher
    longPoll: LongPoll
    /**
     * Starts the graceful drain (SPEC §4): readiness fails at once, new upgrades
     * are refused, open sockets are closed with 1012 over part of the grace.
     * Idempotent; `close()` calls it too.
     */
    drain: () => Promise<void>
  }
}

export interface BuildOptions {
  /** Log destination (tests capture logs with it); stdout by default. */
  readonly logStream?: DestinationStream
  /** Collect Node process metrics (once per process: off for in-process test instances). */
  readonly processMetrics?: boolean
}

/** Share of SHUTDOWN_GRACE_MS spent spreading 1012 closes, then waiting for them. */
const DRAIN_SPREAD_SHARE = 0.4
const DRAIN_SETTLE_SHARE = 0.2
/** SPEC §3: the same idempotencyKey within 5 minutes gets the same offset back. */
const IDEMPOTENCY_TTL_SECONDS = 300

/** The engine the configuration names: Redis on its topology (REDIS_URL, Sentinel, Cluster) or the embedded one. */
export function createEngine (config: Config, logger: EngineLogger, options: { readonly onCommand?: RedisCommandObserver, readonly isOverloaded?: () => boolean } = {}): Engine {
  const relay = {
    historySize: config.historySize,
    historyTtlSeconds: config.historyTtlSeconds,
    idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
    inboundMaxLength: config.inboundMaxLength
  }
  if (config.redis === undefined) return new MemoryEngine({ relay })
  return new RedisEngine({
    topology: config.redis,
    keyPrefix: config.redisKeyPrefix,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    logger,
    relay,
    ...(options.onCommand === undefined ? {} : { onCommand: options.onCommand }),
    ...(options.isOverloaded === undefined ? {} : { isOverloaded: options.isOverloaded })
  })
}

/** Fastify's option for TRUST_PROXY; a hop count trusts the nearest `hops` addresses (as proxy-addr counts them). */
function trustProxyOption (trust: Config['trustProxy']): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust
  return typeof trust === 'boolean' ? trust : [...trust]
}

/**
 * Builds the gateway as a Fastify instance that is not yet listening. Tests build
 * real instances and listen on port 0; main.ts adds the process around it.
 */
export async function buildApp (config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: loggerOptions(config.logLevel, options.logStream),
    genReqId: requestIdOf,
    requestIdHeader: false,
    logController: new GatewayLogController(),
    bodyLimit: 64 * 1024,
    // SPEC §13: whose X-Forwarded-For is believed; request.ip (limits, logs) follows it.
    trustProxy: trustProxyOption(config.trustProxy),
    // Unknown or misspelt body fields are a 400, never silently dropped (SPEC §3).
    ajv: { customOptions: { removeAdditional: false } },
    frameworkErrors: frameworkErrorHandler,
    // Node's default would keep a draining process waiting on idle keep-alive sockets.
    forceCloseConnections: 'idle'
  })

  // Metrics come first: the engine reports each Redis command into them. Engine state,
  // drain and channels are read when scraped (the closures run after wiring).
  const metrics: GatewayMetrics = new GatewayMetrics({
    processMetrics: options.processMetrics,
    sources: {
      engineKind: () => engine.kind,
      engineReady: () => engine.isReady(),
      draining: (): boolean => hub.draining,
      channels: (): number => relay.channelCount
    }
  })
  const engine = createEngine(config, app.log.child({ component: 'engine' }), {
    onCommand: metrics.observeRedisCommand,
    // Read when a command times out, after admission control is registered below.
    isOverloaded: () => app.isUnderPressure()
  })
  if (engine.kind === 'memory') {
    app.log.warn({ event: 'engine.memory' }, 'no Redis configured (REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES): using the embedded memory engine (one instance only, nothing shared)')
  }

  // Bans (SPEC §3 revokeSeconds): one mirror per instance, read by tickets and the hub.
  const revocations = new Revocations({ engine })
  const hub = new Hub({ heartbeatIntervalMs: config.heartbeatIntervalMs, metrics, logger: app.log.child({ component: 'hub' }), revocations, control: engine })
  app.decorate('metrics', metrics)
  app.decorate('hub', hub)
  const relay = new ChannelRelay({ engine, logger: app.log.child({ component: 'relay' }), maxChannelsPerConnection: config.wsMaxChannelsPerConnection, metrics })
  app.decorate('relay', relay)
  const longPoll = new LongPoll({ engine, relay })
  app.decorate('longPoll', longPoll)
  app.decorate('publisher', new ChannelPublisher({
    engine,
    maxFrameBytes: config.wsMaxPayloadBytes,
    observe: (outcome, seconds) => { metrics.publishDuration.observe({ outcome }, seconds) }
  }))
  app.decorate('verifyToken', await createTokenVerifier(config.jwt))
  app.decorate('tickets', new TicketService({ engine, ttlSeconds: config.ticketTtlSeconds, metrics, revocations }))

  let drained: Promise<void> | undefined
  app.decorate('drain', async () => {
    longPoll.release()
    drained ??= hub.drain(config.shutdownGraceMs * DRAIN_SPREAD_SHARE, config.shutdownGraceMs * DRAIN_SETTLE_SHARE)
    await drained
  })


  await app.register(enginePlugin, { engine })
  await app.register(errorHandlerPlugin)
  await app.register(jsonBodyPlugin)
  // Before any route, so the document sees them all.
  await app.register(openapiPlugin)
  await app.register(websocket, {
    options: { maxPayload: config.wsMaxPayloadBytes },
    // Errors on an open socket (e.g. an oversize frame) are already answered by ws
    // with the right close code; the default handler would cut the socket first.
    errorHandler: (error, socket, request) => {
      request.log.debug({ event: 'ws.socket_error', code: (error as NodeJS.ErrnoException).code }, 'websocket error')
      if ((error as NodeJS.ErrnoException).code?.startsWith('WS_ERR_') !== true) socket.terminate()
    },
    // The default closes sockets without a code; clients must see 1012 (SPEC §4).
    preClose: async () => {
      await app.drain()
      app.websocketServer.close()
    }
  })

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
    // @fastify/websocket logs the full URL of upgrades to non-WebSocket routes: refuse them
    // first. (Registered after the plugin, whose own hook sets `request.ws`.)
    if (request.ws && request.routeOptions.url !== config.wsPath) {
      return await reply.code(404).send(errorBody('NOT_FOUND', request.id))
    }
  })

  // After the hook above, so a refusal carries x-request-id too.
  await app.register(admissionPlugin, {
    ...config.admission,
    admits: (request) => request.routeOptions.url === '/ws-ticket' || request.routeOptions.url === config.wsPath,
    onRefused: (request) => { metrics.admissionRefusals.inc({ route: request.routeOptions.url === '/ws-ticket' ? 'ticket' : 'upgrade' }) }
  })
  await app.register(corsPlugin, { origins: config.corsOrigins, paths: new Set(['/ws-ticket', '/v1/poll']) })

  // Draining: keep-alive clients (ticket requests, long-polls) reconnect to another instance.
  app.addHook('onSend', async (_request, reply, payload) => {
    if (hub.draining) reply.header('connection', 'close')
    return payload
  })

  // Before the routes: its response hook times every one of them. /metrics goes on
  // METRICS_PORT instead of the main port when that is set.
  await app.register(metricsPlugin, { metrics, port: config.metricsPort, host: config.host })
  await app.register(healthRoutes)
  await app.register(probePortPlugin, {
    port: config.probePort,
    host: config.host,
    inputs: () => ({ engineReady: engine.isReady(), draining: hub.draining })
  })
  await app.register(ticketLimitsPlugin, { ...config.ticketRateLimit, engine })
  await app.register(ticketRoute)
  await app.register(v1Routes)
  await app.register(wsRoute, {
    path: config.wsPath,
    allowedOrigins: config.allowedOrigins,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    messageRate: config.wsMessageRate,
    maxBufferedBytes: config.wsMaxBufferedBytes
  })
  // SPEC §8: only a gateway running on its generated development secret serves the demo.
  // (config.ts never gives production a dev secret; checked here too, as the demo mints tokens.)
  if (config.jwt.devSecret && !config.production && config.jwt.secret !== undefined) {
    await app.register(demoRoutes, { secret: config.jwt.secret })
  }

  return app
}
