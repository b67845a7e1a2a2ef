import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance } from 'fastify'
import type { DestinationStream } from 'pino'
import type { Config } from './config.js'
import type { EngineFactory } from './engine/create-engine.js'
import { createTokenVerifier, jwtKeysOf, type TokenVerifier } from './auth/token-verifier.js'
import { createChannelTokenVerifier } from './auth/channel-token-verifier.js'
import { ChannelRequests } from './ws/channel-requests.js'
import { GatewayMetrics } from './metrics/gateway-metrics.js'
import { TicketService } from './tickets/ticket-service.js'
import { Revocations } from './tickets/revocations.js'
import { Hub } from './ws/hub.js'
import { ChannelRelay } from './channels/channel-relay.js'
import { ChannelPublisher } from './channels/publisher.js'
import { LongPoll } from './channels/long-poll.js'
import { ChannelHistory } from './channels/channel-history.js'
import { LifecycleEvents } from './events/lifecycle-events.js'
import { ChannelPresence } from './channels/channel-presence.js'
import { GatewayLogController, loggerOptions, requestIdOf } from './logging.js'
import enginePlugin from './plugins/engine.js'
import drainPlugin from './plugins/drain.js'
import websocketPlugin from './plugins/websocket.js'
import errorHandlerPlugin, { frameworkErrorHandler } from './plugins/error-handler.js'
import jsonBodyPlugin from './plugins/json-body.js'
import healthRoutes from './routes/health.js'
import { DrainingCheck, type ReadinessInputs } from './probes/readiness.js'
import metricsPlugin from './plugins/metrics.js'
import openapiPlugin from './plugins/openapi.js'
import admissionPlugin from './plugins/admission.js'
import corsPlugin from './plugins/cors.js'
import probePortPlugin from './plugins/probe-port.js'
import ticketLimitsPlugin from './plugins/ticket-limits.js'
import ticketRoute from './routes/ticket.js'
import wsRoute from './routes/ws.js'
import v1Routes from './routes/v1/index.js'
import demoRoutes, { DEMO_ROOM } from './dev/demo.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: GatewayMetrics
    tickets: TicketService
    verifyToken: TokenVerifier
    hub: Hub
    relay: ChannelRelay
    publisher: ChannelPublisher
    longPoll: LongPoll
    channelHistory: ChannelHistory
    lifecycle: LifecycleEvents
    channelRequests: ChannelRequests
    presence: ChannelPresence
  }
}

export interface BuildOptions {
  /**
   * Builds the engine once the app can give it a logger, a command observer and an
   * overload check (main.ts passes the configured one; tests may pass any engine).
   * The app closes it.
   */
  readonly engine: EngineFactory
  /** Log destination (tests capture logs with it); stdout by default. */
  readonly logStream?: DestinationStream
  /** Collect Node process metrics (once per process: off for in-process test instances). */
  readonly processMetrics?: boolean
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
export async function buildApp (config: Config, options: BuildOptions): Promise<FastifyInstance> {
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
  const engine = options.engine({
    logger: app.log.child({ component: 'engine' }),
    onCommand: metrics.observeRedisCommand,
    pubsubProbe: metrics.pubsubProbe,
    // Read when a command times out, after admission control is registered below.
    isOverloaded: () => app.isUnderPressure()
  })

  // Bans (SPEC §3 revokeSeconds): one mirror per instance, read by tickets and the hub.
  const revocations = new Revocations({ engine })
  const hub = new Hub({ heartbeatIntervalMs: config.heartbeatIntervalMs, metrics, logger: app.log.child({ component: 'hub' }), revocations, control: engine })
  app.decorate('metrics', metrics)
  app.decorate('hub', hub)
  const relay = new ChannelRelay({ engine, logger: app.log.child({ component: 'relay' }), maxChannelsPerConnection: config.wsMaxChannelsPerConnection, metrics })
  app.decorate('relay', relay)
  const longPoll = new LongPoll({ engine, relay })
  app.decorate('longPoll', longPoll)
  app.decorate('channelHistory', new ChannelHistory({ engine }))
  app.decorate('publisher', new ChannelPublisher({
    engine,
    maxFrameBytes: config.wsMaxPayloadBytes,
    observe: (outcome, seconds) => { metrics.publishDuration.observe({ outcome }, seconds) }
  }))
  // User tokens and subscription tokens (SPEC §9) are verified with the same keys.
  const jwtKeys = jwtKeysOf(config.jwt)
  app.decorate('verifyToken', await createTokenVerifier(config.jwt, jwtKeys))
  app.decorate('tickets', new TicketService({ engine, ttlSeconds: config.ticketTtlSeconds, metrics, revocations }))
  app.decorate('channelRequests', new ChannelRequests({
    relay,
    publisher: app.publisher,
    verifyChannelToken: createChannelTokenVerifier(jwtKeys),
    logger: app.log.child({ component: 'channels' }),
    metrics
  }))

  // SPEC §12: one id per process, in every event and in this line, so backends can tell instances apart.
  const lifecycle = new LifecycleEvents({ engine, enabled: config.lifecycleEvents, instanceId: randomUUID(), metrics, logger: app.log.child({ component: 'lifecycle' }) })
  app.decorate('lifecycle', lifecycle)
  if (config.lifecycleEvents.size > 0) app.log.info({ event: 'lifecycle.enabled', instanceId: lifecycle.instanceId, events: [...config.lifecycleEvents] }, 'writing lifecycle events')

  // SPEC §11: join/leave reach this instance's subscribers through the relay; the transitions' winner writes the lifecycle events.
  const presence = new ChannelPresence({
    engine,
    // The demo's room (development secret only, SPEC §8) is a presence channel whatever PRESENCE_CHANNELS says.
    channels: config.jwt.devSecret ? [...config.presence.channels, DEMO_ROOM] : config.presence.channels,
    timings: { ttlSeconds: config.presence.ttlSeconds, leaveDelayMs: config.presence.leaveDelayMs },
    maxConnectionsPerUser: config.presence.maxConnectionsPerUser,
    instanceId: lifecycle.instanceId,
    lifecycle,
    logger: app.log.child({ component: 'presence' }),
    deliver: (channel, text, type) => { relay.sendPresenceFrame(channel, text, type) },
    metrics
  })
  app.decorate('presence', presence)

  // Before the engine closes: presence retires this instance (a clean stop is no crash), then the lifecycle writes land.
  await app.register(enginePlugin, { engine, settle: async () => { await presence.retire(); await lifecycle.settled() } })
  await app.register(drainPlugin, { sockets: hub, releaseWaiters: () => { longPoll.release() }, shutdownGraceMs: config.shutdownGraceMs })
  await app.register(errorHandlerPlugin)
  await app.register(jsonBodyPlugin)
  // Before any route, so the document sees them all.
  await app.register(openapiPlugin)
  // Before the upgrade refusal (plugins/websocket.ts), so that 404 carries them too.
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id)
    reply.header('x-content-type-options', 'nosniff')
  })
  await app.register(websocketPlugin, { path: config.wsPath, maxPayloadBytes: config.wsMaxPayloadBytes })
  // After the hooks above, so a refusal carries x-request-id too.
  await app.register(admissionPlugin, {
    ...config.admission,
    admits: (request) => request.routeOptions.url === '/ws-ticket' || request.routeOptions.url === config.wsPath,
    onRefused: (request) => { metrics.admissionRefusals.inc({ route: request.routeOptions.url === '/ws-ticket' ? 'ticket' : 'upgrade' }) }
  })
  await app.register(corsPlugin, { origins: config.corsOrigins, paths: new Set(['/ws-ticket', '/v1/poll']) })

  // Before the routes: its response hook times every one of them. /metrics goes on
  // METRICS_PORT instead of the main port when that is set.
  await app.register(metricsPlugin, { metrics, port: config.metricsPort, host: config.host })
  // SPEC §3: what /readyz names, on the main port and the probe thread alike.
  const drainingCheck = new DrainingCheck(() => hub.draining)
  const readiness = (): ReadinessInputs => ({ checks: [...engine.checks(), drainingCheck.read()] })
  await app.register(healthRoutes, { readiness })
  await app.register(probePortPlugin, { port: config.probePort, host: config.host, inputs: readiness })
  await app.register(ticketLimitsPlugin, config.ticketRateLimit)
  await app.register(ticketRoute)
  await app.register(v1Routes)
  await app.register(wsRoute, {
    path: config.wsPath,
    allowedOrigins: config.allowedOrigins,
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    messageRate: config.wsMessageRate,
    maxBufferedBytes: config.wsMaxBufferedBytes
  })
  // SPEC §8: only a gateway running on its generated development secret serves the demo
  // (config.ts never gives production one).
  if (config.jwt.devSecret && config.jwt.secret !== undefined) {
    await app.register(demoRoutes, { secret: config.jwt.secret })
  }

  return app
}
