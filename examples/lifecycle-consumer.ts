/**
 * How a backend learns who connects, subscribes and leaves (SPEC §12): a Redis
 * consumer group on `<prefix>events`, which the gateway writes when LIFECYCLE_EVENTS
 * is set. Each entry has event (connect, disconnect, subscribe, unsubscribe, join,
 * leave), userId, sessionId, connectionId, instanceId, ts (epoch ms) and, where they
 * apply, channel, code and reason. Run it: `npx tsx examples/lifecycle-consumer.ts`
 * with REDIS_URL (and REDIS_KEY_PREFIX if not `rtgw:`); it prints one JSON line per event.
 *
 * Several workers with distinct CONSUMER names share the load; an entry leaves the
 * group's pending list only when XACKed, so a crashed worker's entries can be claimed
 * by another (XAUTOCLAIM). The stream is capped (EVENTS_MAX_LENGTH): a consumer that
 * stays away longer than the cap lasts misses the oldest events.
 */
import { Redis } from 'ioredis'

export interface LifecycleEvent {
  readonly event: string
  readonly userId: string
  readonly sessionId: string
  readonly connectionId: string
  readonly instanceId: string
  readonly ts: string
  readonly channel?: string
  readonly code?: string
  readonly reason?: string
}

export interface ConsumeEventsOptions {
  readonly redisUrl: string
  readonly stream?: string
  readonly group: string
  readonly consumer: string
  /** Stop after this many events (the test); omit to run forever. */
  readonly maxEvents?: number
  readonly blockMs?: number
  /** Called once the group exists: events written from now on (and any still in the stream) are read. */
  readonly onReady?: () => void
  readonly handle: (event: LifecycleEvent, id: string) => Promise<void>
}

function eventOf (fields: string[]): LifecycleEvent {
  const event: Record<string, string> = {}
  for (let index = 0; index + 1 < fields.length; index += 2) event[fields[index] ?? ''] = fields[index + 1] ?? ''
  return event as unknown as LifecycleEvent
}

export async function consumeEvents (options: ConsumeEventsOptions): Promise<number> {
  const stream = options.stream ?? 'rtgw:events'
  const redis = new Redis(options.redisUrl)
  try {
    // '0': a new group starts with everything still in the stream. BUSYGROUP: it exists.
    await redis.xgroup('CREATE', stream, options.group, '0', 'MKSTREAM').catch((err: Error) => {
      if (!err.message.includes('BUSYGROUP')) throw err
    })
    options.onReady?.()
    let handled = 0
    while (options.maxEvents === undefined || handled < options.maxEvents) {
      const count = options.maxEvents === undefined ? 100 : Math.min(100, options.maxEvents - handled)
      const reply = await redis.xreadgroup('GROUP', options.group, options.consumer, 'COUNT', count, 'BLOCK', options.blockMs ?? 5000, 'STREAMS', stream, '>') as Array<[string, Array<[string, string[]]>]> | null
      if (reply === null) continue
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          await options.handle(eventOf(fields), id)
          // Acknowledge only after handling: a crash before this leaves it pending for a retry.
          await redis.xack(stream, options.group, id)
          handled += 1
        }
      }
    }
    return handled
  } finally {
    await redis.quit()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const maxEvents = process.env.MAX_EVENTS === undefined ? undefined : Number(process.env.MAX_EVENTS)
  await consumeEvents({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    stream: `${process.env.REDIS_KEY_PREFIX ?? 'rtgw:'}events`,
    group: process.env.GROUP ?? 'backend',
    consumer: process.env.CONSUMER ?? `worker-${process.pid}`,
    ...(maxEvents === undefined ? {} : { maxEvents }),
    onReady: () => { process.stderr.write('lifecycle-consumer: ready\n') },
    handle: async (event) => { process.stdout.write(`${JSON.stringify(event)}\n`) }
  })
}
