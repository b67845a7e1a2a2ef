import type { Engine } from '../engine/engine.js'
import { formatOffset } from '../../protocol/offsets.js'
import { GatewayError } from '../errors.js'

/** Room for the §5 frame around `data`: type, channel and offset. */
const FRAME_OVERHEAD_BYTES = 300

export interface ChannelPublisherOptions {
  readonly engine: Engine
  /** A delivered frame must fit the clients' limit (WS_MAX_PAYLOAD_BYTES). */
  readonly maxFrameBytes: number
  /** Told how long each engine publish took (rtgw_publish_duration_seconds). */
  readonly observe?: (outcome: 'ok' | 'error', seconds: number) => void
}

/**
 * The one way a message enters a channel (SPEC §3 /v1/publish, §9 client publish with
 * its `from`, the demo's publish):
 * the frame must fit the clients' payload limit, the engine appends and fans it out,
 * and the time it took is observed. Answers with the §3 errors itself.
 */
export class ChannelPublisher {
  readonly #options: ChannelPublisherOptions

  constructor (options: ChannelPublisherOptions) {
    this.#options = options
  }

  async publish (channel: string, value: unknown, idempotencyKey?: string, from?: string): Promise<{ channel: string, offset: string }> {
    const { engine, maxFrameBytes, observe } = this.#options
    const data = JSON.stringify(value ?? null)
    // `"from":<JSON string>` travels in the frame too (SPEC §9).
    const fromBytes = from === undefined ? 0 : Buffer.byteLength(JSON.stringify(from)) + 8
    if (Buffer.byteLength(data) + fromBytes + FRAME_OVERHEAD_BYTES > maxFrameBytes) {
      throw new GatewayError('MESSAGE_TOO_LARGE_FOR_CLIENTS', { message: `data of ${channel} is over the ${maxFrameBytes}-byte frame limit` })
    }
    const started = performance.now()
    let outcome: 'ok' | 'error' = 'error'
    try {
      const result = await engine.publish(channel, data, {
        ...(idempotencyKey === undefined ? {} : { idempotencyKey }),
        ...(from === undefined ? {} : { from })
      })
      outcome = 'ok'
      return { channel, offset: formatOffset(result) }
    } finally {
      observe?.(outcome, (performance.now() - started) / 1000)
    }
  }
}
