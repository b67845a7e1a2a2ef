import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

export type TicketRejectReason = 'missing' | 'invalid' | 'expired' | 'engine_unavailable'

/**
 * The gateway's Prometheus metrics, one registry per app so that several gateway
 * instances in one process (tests) never share counters. Labels are bounded enums:
 * never a user, session or channel (cardinality).
 */
export class GatewayMetrics {
  readonly registry = new Registry()
  readonly ticketsIssued = new Counter({ name: 'rtgw_tickets_issued_total', help: 'Tickets issued by POST /ws-ticket', registers: [this.registry] })
  readonly ticketsConsumed = new Counter({ name: 'rtgw_tickets_consumed_total', help: 'Tickets consumed by a successful WebSocket handshake', registers: [this.registry] })
  readonly ticketsRejected = new Counter({
    name: 'rtgw_tickets_rejected_total',
    help: 'WebSocket handshakes whose ticket was refused, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry]
  })

  readonly connectionsOpen = new Gauge({ name: 'rtgw_connections_open', help: 'Open WebSocket sessions on this instance', registers: [this.registry] })

  constructor (options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry, prefix: 'rtgw_' })
    // Reasons are known up front so dashboards see zeros rather than missing series.
    for (const reason of ['missing', 'invalid', 'expired', 'engine_unavailable'] satisfies TicketRejectReason[]) {
      this.ticketsRejected.inc({ reason }, 0)
    }
  }
}
