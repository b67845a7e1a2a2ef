/**
 * How a backend reads what users send (SPEC §5 `send`): a Redis consumer group on
 * `<prefix>inbound`. Each entry has userId, sessionId, connectionId, id (the client's)
 * and data (JSON text). Run it: `npx tsx examples/inbound-consumer.ts` with REDIS_URL.
 *
 * Several workers with distinct consumer names share the load; an entry is removed
 * from the group's pending list only when XACKed, so a crashed worker's entries can
 * be claimed by another (XAUTOCLAIM) and nothing is lost.
 */
import { Redis } from 'ioredis'

export interface ConsumeOptions {
  readonly redisUrl: string
  readonly stream?: string
  readonly group: string
  readonly consumer: string
  /** Stop after this many messages (the example and the test); omit to run forever. */
  readonly maxMessages?: number
  readonly blockMs?: number
  readonly handle: (message: Record<string, string>) => Promise<void>
}

function fieldsToObject (fields: string[]): Record<string, string> {
  const message: Record<string, string> = {}
  for (let index = 0; index + 1 < fields.length; index += 2) message[fields[index] ?? ''] = fields[index + 1] ?? ''
  return message
}

export async function consumeInbound (options: ConsumeOptions): Promise<number> {
  const stream = options.stream ?? 'rtgw:inbound'
  const redis = new Redis(options.redisUrl)
  try {
    // '0': a new group starts with everything still in the stream. BUSYGROUP: it exists.
    await redis.xgroup('CREATE', stream, options.group, '0', 'MKSTREAM').catch((err: Error) => {
      if (!err.message.includes('BUSYGROUP')) throw err
    })
    let handled = 0
    while (options.maxMessages === undefined || handled < options.maxMessages) {
      const reply = await redis.xreadgroup('GROUP', options.group, options.consumer, 'COUNT', 100, 'BLOCK', options.blockMs ?? 5000, 'STREAMS', stream, '>') as Array<[string, Array<[string, string[]]>]> | null
      if (reply === null) continue
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          await options.handle(fieldsToObject(fields))
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
  await consumeInbound({
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    stream: `${process.env.REDIS_KEY_PREFIX ?? 'rtgw:'}inbound`,
    group: process.env.GROUP ?? 'backend',
    consumer: process.env.CONSUMER ?? `worker-${process.pid}`,
    handle: async (message) => { process.stdout.write(`${JSON.stringify(message)}\n`) }
  })
}
