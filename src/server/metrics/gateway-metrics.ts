import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ConnectionMetrics, ReceivedFrameKind, SentFrameKind, ServerCloseReason } from '../ws/connection-metrics.js'
import type { HubMetrics } from '../ws/hub.js'
import type { RelayMetrics } from '../channels/channel-relay.js'
import type { TicketMetrics, TicketRejectReason } from '../tickets/ticket-service.js'
import { LIFECYCLE_EVENT_NAMES, LIFECYCLE_OUTCOMES, type LifecycleEventName, type LifecycleOutcome } from '../events/lifecycle-events.js'
import { CLIENT_PUBLISH_RESULTS, type ClientPublishResult } from '../ws/channel-requests.js'

/** How a WebSocket upgrade ended (SPEC §4): a session, or the close/HTTP code that refused it. */
export type ConnectOutcome = 'established' | '4401' | '4403' | '1013' | '1012' | '403'

/** What the metrics read at scrape time rather than being told on every change. */
export interface MetricsSources {
  /** `redis` or `memory`: the `engine` label of rtgw_engine_ready. */
  readonly engineKind: () => string
  readonly engineReady: () => boolean
  readonly draining: () => boolean
  /** Channels this instance listens to (local subscribers or long-polls). */
  readonly channels: () => number
}

const RECEIVED_KINDS = ['ping', 'subscribe', 'unsubscribe', 'send', 'invalid', 'binary', 'publish', 'presence'] as const satisfies readonly ReceivedFrameKind[]
const SENT_KINDS = ['session_established', 'pong', 'subscribed', 'unsubscribed', 'message', 'ack', 'error', 'published', 'join', 'leave', 'presence'] as const satisfies readonly SentFrameKind[]
const CONNECT_OUTCOMES = ['established', '4401', '4403', '1013', '1012', '403'] as const satisfies readonly ConnectOutcome[]
const SERVER_CLOSE_REASONS = ['SLOW_CONSUMER', 'RATE_LIMITED', 'SESSION_REVOKED', 'SERVER_RESTART', 'BINARY_NOT_SUPPORTED', 'HEARTBEAT_TIMEOUT', 'TOO_MANY_CONNECTIONS'] as const satisfies readonly ServerCloseReason[]
const TICKET_REJECT_REASONS = ['missing', 'invalid', 'expired', 'engine_unavailable', 'revoked'] as const satisfies readonly TicketRejectReason[]

/** Seconds. HTTP spans a 1 ms ticket to a 30 s long-poll; Redis and publish sit well below. */
const HTTP_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const PUBLISH_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]
const REDIS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]

/** Label of requests that matched no route: the raw URL would be unbounded (and may carry a ticket). */
const UNMATCHED_ROUTE = 'unmatched'

function zeroes<K extends string> (keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>
}

/**
 * The gateway's Prometheus metrics, one registry per app so that several gateway
 * instances in one process (tests) never share counters. Labels are bounded enums:
 * never a user, session, channel, connection or raw URL (cardinality, and URLs
 * carry tickets). docs/operations.md describes every metric.
 */
export class GatewayMetrics implements ConnectionMetrics, HubMetrics, RelayMetrics, TicketMetrics {
  readonly registry = new Registry()

  // Tickets (SPEC §3, §4)
  readonly ticketsIssued = new Counter({ name: 'rtgw_tickets_issued_total', help: 'Tickets issued by POST /ws-ticket', registers: [this.registry] })
  readonly ticketsConsumed = new Counter({ name: 'rtgw_tickets_consumed_total', help: 'Tickets consumed by a successful WebSocket handshake', registers: [this.registry] })
  readonly ticketsRejected = new Counter({
    name: 'rtgw_tickets_rejected_total',
    help: 'WebSocket handshakes whose ticket was refused, by reason (expired: presented after its expiry, within 60 s of it; revoked: its user or session is banned)',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  // Admission control (SPEC §13)
  readonly admissionRefusals = new Counter({
    name: 'rtgw_admission_refusals_total',
    help: 'New tickets and upgrades refused 503 OVERLOADED while the event loop was saturated, by route',
    labelNames: ['route'] as const,
    registers: [this.registry]
  })

  // WebSocket sessions
  readonly connectionsOpen = new Gauge({ name: 'rtgw_connections_open', help: 'Open WebSocket sessions on this instance', registers: [this.registry] })
  readonly wsConnects = new Counter({
    name: 'rtgw_ws_connects_total',
    help: 'WebSocket upgrade attempts by outcome: established, or the code that refused them (4401 ticket, 4403 revoked, 1013 engine, 1012 draining, 403 Origin)',
    labelNames: ['outcome'] as const,
    registers: [this.registry]
  })

  readonly serverCloses = new Counter({
    name: 'rtgw_ws_server_closes_total',
    help: 'Open WebSocket sessions ended by the gateway, by reason (SLOW_CONSUMER, RATE_LIMITED, ...)',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  /** Bumped per frame by connections; exported by the counters below at scrape time. */
  readonly messagesIn = zeroes(RECEIVED_KINDS)
  readonly messagesOut = zeroes(SENT_KINDS)

  // Relay
  readonly publishDuration = new Histogram({
    name: 'rtgw_publish_duration_seconds',
    help: 'Time to publish one message to the engine (POST /v1/publish; a batch counts each message), by outcome',
    labelNames: ['outcome'] as const,
    buckets: PUBLISH_BUCKETS,
    registers: [this.registry]
  })

  readonly gapFills = new Counter({
    name: 'rtgw_relay_gap_fills_total',
    help: 'Live messages pub/sub skipped on this instance, detected by their offset and filled from history',
    registers: [this.registry]
  })

  // Engine
  readonly redisCommandDuration = new Histogram({
    name: 'rtgw_redis_command_duration_seconds',
    help: 'Redis command round trips by command and outcome (ok, error)',
    labelNames: ['command', 'outcome'] as const,
    buckets: REDIS_BUCKETS,
    registers: [this.registry]
  })

  // Delivery probe (SPEC §14; docs/operations.md "Deaf subscriber")
  readonly pubsubProbeRoundTrip = new Histogram({ name: 'rtgw_pubsub_probe_round_trip_seconds', help: 'Delivery probes from publish to their return on this instance\'s own subscriber', buckets: REDIS_BUCKETS, registers: [this.registry] })
  readonly pubsubProbeMisses = new Counter({ name: 'rtgw_pubsub_probe_misses_total', help: 'Delivery probes not back within PUBSUB_PROBE_TIMEOUT_MS (two in a row fail the pubsub check)', registers: [this.registry] })
  readonly pubsubProbeHeals = new Counter({ name: 'rtgw_pubsub_probe_heals_total', help: 'Subscriber connections re-established after two missed probes, every channel re-synced from history', registers: [this.registry] })
  readonly pubsubProbe = {
    roundTrip: (seconds: number): void => { this.pubsubProbeRoundTrip.observe(seconds) },
    missed: (): void => { this.pubsubProbeMisses.inc() },
    healed: (): void => { this.pubsubProbeHeals.inc() }
  }

  // HTTP
  readonly httpRequestDuration = new Histogram({
    name: 'rtgw_http_request_duration_seconds',
    help: 'HTTP requests by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: HTTP_BUCKETS,
    registers: [this.registry]
  })

  // Lifecycle events (SPEC §12)
  readonly lifecycleEvents = new Counter({
    name: 'rtgw_lifecycle_events_total',
    help: 'Lifecycle events by event and outcome: written to <prefix>events, failed (engine down or refused), dropped (too many writes in flight)',
    labelNames: ['event', 'outcome'] as const,
    registers: [this.registry]
  })

  // Presence (SPEC §11)
  readonly presenceChannels = new Gauge({ name: 'rtgw_presence_channels', help: 'Presence channels with members on this instance', registers: [this.registry] })
  readonly presenceMembers = new Gauge({ name: 'rtgw_presence_members', help: 'Connections present in presence channels on this instance', registers: [this.registry] })
  readonly presenceEvents = new Counter({
    name: 'rtgw_presence_events_total',
    help: 'Joins and leaves this instance decided and sent (each once cluster-wide)',
    labelNames: ['kind'] as const,
    registers: [this.registry]
  })

  readonly connectionLimitCloses = new Counter({ name: 'rtgw_connection_limit_closes_total', help: 'Sessions closed 4429 TOO_MANY_CONNECTIONS (WS_MAX_CONNECTIONS_PER_USER)', registers: [this.registry] })

  // Client publish (SPEC §9): every `publish` frame's answer, by result (ws/channel-requests.ts ClientPublishResult)
  readonly clientPublishes = new Counter({
    name: 'rtgw_client_publishes_total',
    help: 'publish frames by result: published, forbidden (FORBIDDEN_CHANNEL), too_large (MESSAGE_TOO_LARGE_FOR_CLIENTS), unavailable (REDIS_NOT_READY), overloaded (OVERLOADED)',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  clientPublish (result: ClientPublishResult): void {
    this.clientPublishes.inc({ result })
  }

  // State read at scrape time (only with `sources`)
  readonly engineReady?: Gauge<'engine'>
  readonly draining?: Gauge
  readonly relayChannels?: Gauge

  readonly messagesReceived: Counter<'type'>
  readonly messagesSent: Counter<'type'>
  readonly #connectOutcomes: Record<ConnectOutcome, Counter.Internal>
  readonly #closeReasons: Record<ServerCloseReason, Counter.Internal>

  constructor (options: { processMetrics?: boolean, sources?: MetricsSources } = {}) {
    // Process metrics (CPU, memory, GC, event-loop lag) describe the process: one app per
    // process collects them (main.ts), in-process test instances do not.
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry, prefix: 'rtgw_' })

    const messagesIn = this.messagesIn
    const messagesOut = this.messagesOut
    // Counters that read the plain frame counts when scraped.
    this.messagesReceived = new Counter({
      name: 'rtgw_ws_messages_received_total',
      help: 'WebSocket frames received by type (invalid: answered BAD_MESSAGE; binary: closed 1003)',
      labelNames: ['type'] as const,
      registers: [this.registry],
      collect () {
        this.reset()
        for (const type of RECEIVED_KINDS) this.inc({ type }, messagesIn[type])
      }
    })
    this.messagesSent = new Counter({
      name: 'rtgw_ws_messages_sent_total',
      help: 'WebSocket frames sent by type (message: channel deliveries)',
      labelNames: ['type'] as const,
      registers: [this.registry],
      collect () {
        this.reset()
        for (const type of SENT_KINDS) this.inc({ type }, messagesOut[type])
      }
    })

    const sources = options.sources
    if (sources !== undefined) {
      // Read when scraped: nothing to keep in step on every change.
      this.engineReady = new Gauge({
        name: 'rtgw_engine_ready',
        help: 'Whether the engine (Redis) is connected and ready: 1 or 0, read when scraped',
        labelNames: ['engine'] as const,
        registers: [this.registry],
        collect () { this.set({ engine: sources.engineKind() }, sources.engineReady() ? 1 : 0) }
      })
      this.draining = new Gauge({
        name: 'rtgw_draining',
        help: 'Whether this instance is draining after SIGTERM: 1 or 0',
        registers: [this.registry],
        collect () { this.set(sources.draining() ? 1 : 0) }
      })
      this.relayChannels = new Gauge({
        name: 'rtgw_relay_channels',
        help: 'Channels this instance listens to (local subscribers or long-polls)',
        registers: [this.registry],
        collect () { this.set(sources.channels()) }
      })
    }

    // Every label value is known up front, so dashboards see zeros rather than missing series.
    for (const reason of TICKET_REJECT_REASONS) this.ticketsRejected.inc({ reason }, 0)
    this.#connectOutcomes = Object.fromEntries(CONNECT_OUTCOMES.map((outcome) => [outcome, this.wsConnects.labels(outcome)])) as Record<ConnectOutcome, Counter.Internal>
    this.#closeReasons = Object.fromEntries(SERVER_CLOSE_REASONS.map((reason) => [reason, this.serverCloses.labels(reason)])) as Record<ServerCloseReason, Counter.Internal>
    for (const outcome of CONNECT_OUTCOMES) this.#connectOutcomes[outcome].inc(0)
    for (const reason of SERVER_CLOSE_REASONS) this.#closeReasons[reason].inc(0)
    for (const outcome of ['ok', 'error']) this.publishDuration.zero({ outcome })
    for (const event of LIFECYCLE_EVENT_NAMES) for (const outcome of LIFECYCLE_OUTCOMES) this.lifecycleEvents.inc({ event, outcome }, 0)
    for (const kind of ['join', 'leave']) this.presenceEvents.inc({ kind }, 0)
    for (const result of CLIENT_PUBLISH_RESULTS) this.clientPublishes.inc({ result }, 0)
  }

  ticketIssued (): void {
    this.ticketsIssued.inc()
  }

  ticketConsumed (): void {
    this.ticketsConsumed.inc()
  }

  /** The label is the service's own reason: the codes clients see do not tell expired from unknown. */
  ticketRejected (reason: TicketRejectReason): void {
    this.ticketsRejected.inc({ reason })
  }

  connect (outcome: ConnectOutcome): void {
    this.#connectOutcomes[outcome].inc()
  }

  serverClose (reason: ServerCloseReason): void {
    this.#closeReasons[reason].inc()
  }

  /** One HTTP response; `route` is the matched route's pattern (undefined when none matched). */
  observeHttp (method: string, route: string | undefined, statusCode: number, elapsedMs: number): void {
    this.httpRequestDuration.observe({ method, route: route ?? UNMATCHED_ROUTE, status_code: statusCode }, elapsedMs / 1000)
  }

  /** One Redis command (the engine's `onCommand` hook). */
  readonly observeRedisCommand = (command: string, durationMs: number, ok: boolean): void => {
    this.redisCommandDuration.observe({ command, outcome: ok ? 'ok' : 'error' }, durationMs / 1000)
  }

  presenceEvent (kind: 'join' | 'leave'): void {
    this.presenceEvents.inc({ kind })
  }

  connectionLimitClose (): void {
    this.connectionLimitCloses.inc()
  }

  /** One lifecycle event's outcome (events/lifecycle-events.ts LifecycleMetrics). */
  lifecycleEvent (event: LifecycleEventName, outcome: LifecycleOutcome): void {
    this.lifecycleEvents.inc({ event, outcome })
  }
}
