import type { Engine, EngineLogger } from '../engine/engine.js'
import type { Connection } from './connection.js'
import { parseDisconnectMessage } from './disconnect-message.js'
import { revocationTargetOf, type Revocations } from '../tickets/revocations.js'

/** What the hub counts (the app's GatewayMetrics). */
export interface HubMetrics {
  /** Open sessions on this instance (rtgw_connections_open). */
  readonly connectionsOpen: { set (value: number): void }
}

export interface HubOptions {
  readonly heartbeatIntervalMs: number
  readonly metrics: HubMetrics
  readonly logger: EngineLogger
  /** Bans (SPEC §3 revokeSeconds): remembered on revoke, checked when a connection joins. */
  readonly revocations: Revocations
  /** Where /v1/disconnect requests from any instance arrive (SPEC §3): the hub acts on them. */
  readonly control: Pick<Engine, 'onControl'>
}

/**
 * The registry of this instance's connections: heartbeat and drain act on all of
 * them from one timer instead of one timer per socket, and remote disconnects (control
 * messages, as centrifuge's node hands them to its hub) close the matching ones.
 * Channel fan-out is not here: the ChannelRelay keeps each subscriber's subscriptions.
 */
export class Hub {
  readonly #connections = new Set<Connection>()
  readonly #metrics: HubMetrics
  readonly #logger: EngineLogger
  readonly #revocations: Revocations
  readonly #heartbeat: NodeJS.Timeout
  #draining = false
  /** Resolves the drain's wait when the last connection goes. */
  #onEmpty: (() => void) | undefined

  constructor (options: HubOptions) {
    this.#metrics = options.metrics
    this.#logger = options.logger
    this.#revocations = options.revocations
    // A ban whose broadcast this instance missed (pub/sub reconnect) still closes its sockets.
    this.#revocations.onLearned((target) => {
      const closed = this.#close(target.kind === 'user' ? { userId: target.id } : { sessionId: target.id })
      if (closed > 0) this.#logger.info({ event: 'ws.revoked', closed, source: 'load' }, 'sessions revoked')
    })
    options.control.onControl((text) => {
      const message = parseDisconnectMessage(text)
      if (message === undefined) return
      const closed = this.revoke(message.target, message.revokeSeconds)
      if (closed > 0) this.#logger.info({ event: 'ws.revoked', closed }, 'sessions revoked')
    })
    this.#heartbeat = setInterval(() => { this.#beat() }, options.heartbeatIntervalMs)
    this.#heartbeat.unref()
  }

  get size (): number {
    return this.#connections.size
  }

  get draining (): boolean {
    return this.#draining
  }

  add (connection: Connection): void {
    this.#connections.add(connection)
    this.#metrics.connectionsOpen.set(this.#connections.size)
    // The ticket was checked when consumed; a ban that landed since (before this socket
    // was registered, so revoke() could not see it) still wins.
    if (this.#revocations.isRevoked(connection.identity.userId, connection.identity.sessionId)) connection.closeWith('SESSION_REVOKED')
  }

  remove (connection: Connection): void {
    if (!this.#connections.delete(connection)) return
    this.#metrics.connectionsOpen.set(this.#connections.size)
    if (this.#connections.size === 0) this.#onEmpty?.()
  }

  /**
   * Closes every local connection of a user or a session with 4403 (SPEC §3
   * /v1/disconnect) and, with `revokeSeconds`, remembers the ban for that long, so
   * this instance refuses the target's tickets. Returns how many were closed.
   */
  revoke (target: { readonly userId?: string, readonly sessionId?: string }, revokeSeconds?: number): number {
    if (revokeSeconds !== undefined) this.rememberBan(target, revokeSeconds)
    return this.#close(target)
  }

  /**
   * The ban in force on this instance from now on. The instance that stores a ban calls
   * it before answering, so a ticket asked for right after the 200 is refused without
   * waiting for the ban's broadcast to come back over pub/sub.
   */
  rememberBan (target: { readonly userId?: string, readonly sessionId?: string }, revokeSeconds: number): void {
    const banned = revocationTargetOf(target)
    if (banned !== undefined) this.#revocations.remember(banned, revokeSeconds * 1000)
  }

  #close (target: { readonly userId?: string, readonly sessionId?: string }): number {
    let closed = 0
    for (const connection of this.#connections) {
      const { userId, sessionId } = connection.identity
      if (userId === target.userId || sessionId === target.sessionId) {
        connection.closeWith('SESSION_REVOKED')
        closed += 1
      }
    }
    return closed
  }

  /** Two heartbeats without a pong (or any frame) means the peer is gone (SPEC §2). */
  #beat (): void {
    for (const connection of this.#connections) {
      if (connection.missedHeartbeats >= 2) {
        connection.logger.info({ event: 'ws.heartbeat_timeout' }, 'peer missed two heartbeats; terminating')
        connection.terminateDead()
      } else {
        connection.heartbeat()
      }
    }
  }

  /**
   * Closes every connection with 1012 (SPEC §4), spread evenly over `spreadMs` so
   * clients do not all reconnect to the other instances in the same instant, then
   * waits up to `settleMs` for close handshakes and terminates what is left.
   */
  async drain (spreadMs: number, settleMs: number): Promise<void> {
    this.#draining = true
    clearInterval(this.#heartbeat)
    const connections = [...this.#connections]
    this.#logger.info({ event: 'ws.drain', connections: connections.length, spreadMs }, 'closing connections with 1012')
    const step = connections.length > 1 ? spreadMs / connections.length : 0
    for (const [index, connection] of connections.entries()) {
      const due = index * step
      if (due > 0) setTimeout(() => { connection.closeWith('SERVER_RESTART') }, due).unref()
      else connection.closeWith('SERVER_RESTART')
    }
    if (this.#connections.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, spreadMs + settleMs)
        this.#onEmpty = () => { clearTimeout(timer); resolve() }
      })
    }
    for (const connection of this.#connections) connection.terminate()
  }
}
