import { Agent } from 'node:http'
import type { ServerChild } from './child.js'
import type { Connector, HeldConnection } from './connects.js'

export interface HoldOptions {
  readonly count: number
  readonly concurrency: number
  readonly tokens: readonly string[]
  readonly wsPath: string
  readonly connector: Connector
  /** Whole-phase bound on opening; connections not opened by then are reported short. */
  readonly deadlineMs: number
  /** Idle time after the last open before the reading (heartbeats, GC settle). */
  readonly settleMs: number
}

export interface HoldResult {
  readonly name: string
  readonly held: number
  readonly failures: number
  readonly firstFailure?: string
  /** Server RSS and V8 heap growth per held connection, bytes (after a full GC in the child). */
  readonly rssPerConnection: number
  readonly heapPerConnection: number
  readonly externalPerConnection: number
  readonly rssBefore: number
  readonly rssAfter: number
  /**
   * RSS growth per connection over the second half only (held/2 → held): what one more
   * idle connection costs once the heap has grown to its working size.
   */
  readonly marginalRssPerConnection: number
  readonly heapTotalPerConnection: number
}

/**
 * Opens `count` connections to a peer and keeps them idle, reading the server's memory
 * before and after (each after a full GC: the children run with --expose-gc), then
 * closes them all. RSS per connection = (after − before) / held.
 */
export async function holdPhase (name: string, server: ServerChild, options: HoldOptions): Promise<HoldResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency })
  const held: HeldConnection[] = []
  let failures = 0
  let firstFailure: string | undefined
  const before = await server.memory()
  const deadline = performance.now() + options.deadlineMs
  let next = 0
  try {
    const openNext = async (): Promise<void> => {
      const token = options.tokens[next % options.tokens.length]!
      next++
      try {
        held.push(await options.connector(agent, server, token, { wsPath: options.wsPath, connectTimeoutMs: 10_000 }))
      } catch (err) {
        failures++
        firstFailure ??= (err as Error).message
      }
    }
    const half = Math.floor(options.count / 2)
    let target = half
    const workers = async (): Promise<void> => { await Promise.all(Array.from({ length: options.concurrency }, worker)) }
    const worker = async (): Promise<void> => {
      while (next < target && performance.now() < deadline) await openNext()
    }
    await workers()
    await new Promise((resolve) => setTimeout(resolve, options.settleMs))
    const middle = await server.memory()
    const heldAtMiddle = held.length
    target = options.count
    await workers()
    await new Promise((resolve) => setTimeout(resolve, options.settleMs))
    const after = await server.memory()
    const per = (delta: number): number => held.length === 0 ? Number.NaN : delta / held.length
    return {
      name,
      held: held.length,
      failures,
      ...(firstFailure === undefined ? {} : { firstFailure }),
      rssPerConnection: per(after.rss - before.rss),
      heapPerConnection: per(after.heapUsed - before.heapUsed),
      externalPerConnection: per(after.external - before.external),
      rssBefore: before.rss,
      rssAfter: after.rss,
      marginalRssPerConnection: (after.rss - middle.rss) / Math.max(1, held.length - heldAtMiddle),
      heapTotalPerConnection: per(after.heapTotal - before.heapTotal)
    }
  } finally {
    // Closed in batches so the close handshakes do not all time out at once.
    for (let i = 0; i < held.length; i += 500) await Promise.all(held.slice(i, i + 500).map(async (connection) => { await connection.close() }))
    agent.destroy()
  }
}
