import type { Static } from 'typebox'
import type { PollResponse } from '../../protocol/http.js'
import { formatOffset, parseOffset } from '../../protocol/offsets.js'
import type { Engine, HistoryRead } from '../engine/engine.js'
import { GatewayError } from '../errors.js'
import type { ChannelAccess } from './channel-access.js'
import type { ChannelRelay } from './channel-relay.js'
import { messageFrameBody } from './channel-subscription.js'
import { resumeFromRead } from './recovery.js'

export type PollAnswer = Static<typeof PollResponse>

export interface PollRequest {
  readonly channel: string
  /** An offset (the schema checked its format); undefined asks for the current position. */
  readonly since?: string | undefined
  readonly timeoutMs: number
}

export interface LongPollOptions {
  readonly engine: Pick<Engine, 'readHistory'>
  readonly relay: Pick<ChannelRelay, 'watch'>
}

function pollAnswer (read: HistoryRead, since: { epoch: string, seq: number } | undefined): PollAnswer {
  const resumption = resumeFromRead(since, read)
  const last = read.messages.at(-1)
  return {
    messages: read.messages.slice(resumption.from).map(messageFrameBody),
    offset: formatOffset(last ?? resumption.offset),
    recovered: resumption.recovered
  }
}

/**
 * GET /v1/poll (SPEC §3), the fallback for clients whose WebSocket is unavailable.
 * Stateless (any instance answers): it reads the channel's history after `since`, and
 * when there is nothing yet, waits up to `timeoutMs` for the next message. The drain
 * (`release`) answers every waiting poll at once, so none holds a closing instance.
 */
export class LongPoll {
  readonly #engine: Pick<Engine, 'readHistory'>
  readonly #relay: Pick<ChannelRelay, 'watch'>
  /** Wakes each poll waiting now. */
  readonly #waiting = new Set<() => void>()
  #released = false

  constructor (options: LongPollOptions) {
    this.#engine = options.engine
    this.#relay = options.relay
  }

  /**
   * Answers one poll; `abandoned` (the client went away) ends the wait early. Engine
   * errors are the caller's to map (SPEC §3 REDIS_NOT_READY).
   */
  async poll (access: ChannelAccess, request: PollRequest, abandoned: AbortSignal): Promise<PollAnswer> {
    const { channel, timeoutMs } = request
    if (!access.canSubscribe(channel)) throw new GatewayError('FORBIDDEN_CHANNEL')
    const since = request.since === undefined ? undefined : parseOffset(request.since) ?? undefined
    let arrived = false
    let wake: (() => void) | undefined
    const onMessage = (): void => {
      arrived = true
      wake?.()
    }
    // Watching starts before the first read: a message published in between wakes the wait.
    const watch = this.#relay.watch(channel, onMessage)
    const close = (): void => {
      wake?.()
      this.#waiting.delete(onMessage)
      watch.close()
    }
    this.#waiting.add(onMessage)
    abandoned.addEventListener('abort', close, { once: true })
    try {
      await watch.ready
      const first = await this.#engine.readHistory(channel, since)
      // Not recovered (another epoch, trimmed away, or ahead of the head: SPEC §5) answers at once, from the head.
      if (since === undefined || !first.recovered || first.messages.length > 0 || timeoutMs === 0) return pollAnswer(first, since)
      if (!arrived && !this.#released && !abandoned.aborted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, timeoutMs)
          wake = () => { clearTimeout(timer); resolve() }
        })
      }
      return pollAnswer(await this.#engine.readHistory(channel, since), since)
    } finally {
      abandoned.removeEventListener('abort', close)
      close()
    }
  }

  /**
   * The drain: every poll waiting for a message answers now with what it has, and
   * later ones do not wait, so no poll holds a closing instance for its timeout.
   */
  release (): void {
    this.#released = true
    for (const onMessage of this.#waiting) onMessage()
  }
}
