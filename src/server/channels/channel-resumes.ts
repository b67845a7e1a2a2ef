import type { ChannelMessage, Engine } from '../engine/engine.js'
import type { ChannelPosition } from '../../protocol/offsets.js'
import { messageFrameText, type ChannelSubscription } from './channel-subscription.js'
import { ReplayMerge, batchRead, chooseBase, nextHint, resumeFrom, type HistoryHint, type Resumption, type StreamPosition } from './recovery.js'
import type { ReplayJob, ReplayScheduler } from './replay-scheduler.js'

/** A subscribe waiting for the history read that answers it. */
export interface Resume {
  readonly subscription: ChannelSubscription
  readonly since: ChannelPosition | undefined
  /** The channel's position on this instance when the subscription was registered (recovery.ts ResumeRequest). */
  readonly seen: ChannelPosition | undefined
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

export interface ChannelResumesOptions {
  readonly channel: string
  readonly engine: Pick<Engine, 'readHistory'>
  readonly replays: ReplayScheduler
  /** The channel's live position on this instance, set by the first read when nothing was seen live yet. */
  readonly live: StreamPosition
}

/** The replayed messages of one read, each frame text built once for all the resumes it serves. */
class ReplaySource {
  readonly messages: readonly ChannelMessage[]
  readonly #texts: Array<string | undefined>

  constructor (messages: readonly ChannelMessage[]) {
    this.messages = messages
    this.#texts = new Array<string | undefined>(messages.length)
  }

  /** The frame text of `messages[index]` (given as `message`). */
  text (index: number, message: ChannelMessage): string {
    const text = this.#texts[index] ?? messageFrameText(message)
    this.#texts[index] = text
    return text
  }
}

/**
 * The resumes of one channel on this instance (docs/architecture.md, "Resume under an
 * avalanche"): the subscribes that arrive together share one history read, which
 * recovery.ts decides and answers, and replays are written in slices by the
 * ReplayScheduler, so a reconnect avalanche costs a few reads per channel and never
 * stalls the event loop.
 */
export class ChannelResumes {
  readonly #options: ChannelResumesOptions
  /** Resumes waiting for the next history read of this channel. */
  #queued: Resume[] = []
  /** While a read is in flight: the resumes that arrived since, served by it when it covers them. */
  #joining: Resume[] | undefined
  /** A read is due on the next turn (so the resumes of one burst share it). */
  #readDue = false
  /** What the last read taught about the history (recovery.ts chooseBase). */
  #hint: HistoryHint | undefined

  constructor (options: ChannelResumesOptions) {
    this.#options = options
  }

  /**
   * A resume joins the read in flight (it is served by it if the read covers it) or
   * waits for the next one, due on the next turn of the event loop so that every
   * subscribe of a burst shares it: an avalanche costs O(channels) reads, not O(clients).
   */
  add (resume: Resume): void {
    if (this.#joining !== undefined) {
      this.#joining.push(resume)
      return
    }
    this.#queued.push(resume)
    this.#scheduleRead()
  }

  #scheduleRead (): void {
    if (this.#readDue) return
    this.#readDue = true
    setImmediate(() => {
      this.#readDue = false
      // Never rejects: every failure is answered to the resumes it concerns.
      void this.#readBatch()
    })
  }

  /** One history read for every queued resume of the channel; each is answered from it or queued again. */
  async #readBatch (): Promise<void> {
    if (this.#joining !== undefined) return
    const { channel, engine, live } = this.#options
    const members: Resume[] = []
    const joining: Resume[] = []
    try {
      for (const resume of this.#queued) {
        if (resume.subscription.current) members.push(resume)
        else resume.resolve()
      }
      this.#queued = []
      if (members.length === 0) return
      const base = chooseBase(members.map((resume) => resume.since), this.#hint)
      this.#joining = joining
      const read = await engine.readHistory(channel, base)
      this.#joining = undefined
      if (live.epoch === '') {
        live.epoch = read.epoch
        live.seq = read.seq
      }
      const batch = batchRead(base, read, this.#hint)
      this.#hint = nextHint(batch)
      const source = new ReplaySource(read.messages)
      for (const [resumes, fresh] of [[members, true], [joining, false]] as const) {
        for (const resume of resumes) {
          if (!resume.subscription.current) {
            resume.resolve()
            continue
          }
          const resumption = resumeFrom(batch, { since: resume.since, seen: resume.seen, fresh })
          if (resumption === undefined) this.#queued.push(resume)
          else this.#replay(resume, resumption, source)
        }
      }
    } catch (err) {
      this.#joining = undefined
      // Already settled ones ignore this; the others answer their error (an engine
      // error as REDIS_NOT_READY, anything else is logged and answered INTERNAL_ERROR).
      for (const resume of [...members, ...joining]) resume.reject(err)
    }
    if (this.#queued.length > 0) this.#scheduleRead()
  }

  /**
   * Answers a resume, then replays its messages and the live ones held meanwhile, in
   * slices (ReplayScheduler); it goes live in the same step that delivers the last
   * held message, so none is lost or doubled at the seam (recovery.ts ReplayMerge).
   */
  #replay (resume: Resume, resumption: Resumption, source: ReplaySource): void {
    const { subscription } = resume
    subscription.epoch = resumption.offset.epoch
    subscription.seq = resumption.offset.seq
    const merge = new ReplayMerge(subscription, source.messages, resumption.from, subscription.pending ?? [])
    const job: ReplayJob & { done: boolean } = {
      done: false,
      run: (budget) => {
        // Unsubscribed, closed or subscribed again: the replay is no longer wanted.
        if (!subscription.current) {
          job.done = true
          return 0
        }
        let written = 0
        if (!subscription.answered) written += subscription.answer(resumption)
        for (let step = written < budget ? merge.next() : undefined; step !== undefined; step = written < budget ? merge.next() : undefined) {
          const text = step.replayIndex === undefined ? messageFrameText(step.message) : source.text(step.replayIndex, step.message)
          subscription.write(step.message, step.arrival, text)
          written += 1
        }
        if (!merge.done) return written
        subscription.pending = null
        job.done = true
        return written
      }
    }
    this.#options.replays.add(job)
    resume.resolve()
  }
}
