import type { Static } from 'typebox'
import type { HistoryResponse } from '../../protocol/http.js'
import { formatOffset, parseOffset } from '../../protocol/offsets.js'
import type { Engine } from '../engine/engine.js'
import { GatewayError } from '../errors.js'
import { messageFrameBody } from './channel-subscription.js'
import { resumeFromRead } from './recovery.js'

export type HistoryAnswer = Static<typeof HistoryResponse>

export interface HistoryRequest {
  readonly channel: string
  /** An offset (the schema checked its format); undefined asks for the latest messages. */
  readonly since?: string | undefined
  /** 1..1000 (the schema's bounds). */
  readonly limit: number
}

/**
 * GET /v1/history (SPEC §10): a channel's retained messages for backends. Without
 * `since`, the latest `limit`; with it, at most `limit` after it, so a backend pages
 * through with each answer's `offset`. Whether `since` is recovered is the engine's
 * read and recovery.ts's decision (resumeFromRead), exactly as for a subscribe or a
 * poll: a lost `since` answers no messages, `recovered:false` and the head.
 */
export class ChannelHistory {
  readonly #engine: Pick<Engine, 'readHistoryPage'>

  constructor (options: { readonly engine: Pick<Engine, 'readHistoryPage'> }) {
    this.#engine = options.engine
  }

  /** Engine errors are the caller's to map (SPEC §3 REDIS_NOT_READY). */
  async read (request: HistoryRequest): Promise<HistoryAnswer> {
    const { channel, limit } = request
    const since = request.since === undefined ? undefined : parseOffset(request.since)
    if (since === null) throw new GatewayError('BAD_REQUEST', { message: 'since is not an offset' })
    const read = await this.#engine.readHistoryPage(channel, { since, limit })
    const resumption = resumeFromRead(since, read)
    // Without `since` the page is the latest messages, not a resume: every one is answered.
    const messages = since === undefined ? read.messages : read.messages.slice(resumption.from)
    const last = messages.at(-1)
    return {
      channel,
      messages: messages.map(messageFrameBody),
      offset: formatOffset(last ?? resumption.offset),
      recovered: resumption.recovered
    }
  }
}
