/**
 * Channel offsets (SPEC §5): `<epoch>:<seq>`, the one definition of the format, used by
 * the server, the HTTP and frame schemas and the client SDK. The epoch names one life of
 * a channel's history (a new one after Redis lost it, or it was trimmed away or
 * expired); `seq` counts the channel's messages within it, from 1, with no gaps. Apps
 * treat the whole string as opaque; the gateway and the SDK compare `seq` within one
 * epoch. No imports: the client bundle takes this file as it is.
 */
export interface ChannelPosition {
  readonly epoch: string
  readonly seq: number
}

/** The JSON-schema pattern of an offset (frames and query strings validate with it). */
export const OFFSET_PATTERN_SOURCE = '^([A-Za-z0-9_-]{1,32}):([0-9]{1,15})$'

const OFFSET_PATTERN = new RegExp(OFFSET_PATTERN_SOURCE)

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
