/**
 * Channel offsets (SPEC §5): `<epoch>:<seq>`. The epoch names one life of a channel's
 * history (a new one after Redis lost it, or it was trimmed away or expired); `seq`
 * counts the channel's messages within it, from 1, with no gaps. Clients treat the
 * whole string as opaque; the gateway compares `seq` within one epoch.
 */
export interface ChannelPosition {
  readonly epoch: string
  readonly seq: number
}

const OFFSET_PATTERN = /^([A-Za-z0-9_-]{1,32}):(\d{1,15})$/

export function formatOffset (position: ChannelPosition): string {
  return `${position.epoch}:${position.seq}`
}

/** Null for anything that is not an offset this gateway issued. */
export function parseOffset (offset: string): ChannelPosition | null {
  const match = OFFSET_PATTERN.exec(offset)
  const [, epoch, seq] = match ?? []
  if (epoch === undefined || seq === undefined) return null
  return { epoch, seq: Number(seq) }
}
