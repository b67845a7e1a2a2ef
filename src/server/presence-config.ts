/**
 * The presence variables (SPEC §2, §11), parsed beside config.ts: which channels keep
 * presence (§5 pattern grammar, the linear matcher), how long a user who left may come
 * back without a leave, how long a crashed instance's entries live, and the per-user
 * connection limit.
 */
import { Type } from 'typebox'
import { ChannelPattern } from './channels/channel-pattern.js'

export const PresenceEnv = {
  PRESENCE_CHANNELS: Type.Optional(Type.String()),
  PRESENCE_LEAVE_DELAY_MS: Type.Integer({ minimum: 0, maximum: 600000, default: 5000 }),
  PRESENCE_TTL_SECONDS: Type.Integer({ minimum: 1, maximum: 3600, default: 30 }),
  WS_MAX_CONNECTIONS_PER_USER: Type.Integer({ minimum: 1, maximum: 100000, default: 100 })
}

export interface PresenceConfig {
  /** The PRESENCE_CHANNELS patterns (none: no channel keeps presence). */
  readonly channels: readonly string[]
  readonly leaveDelayMs: number
  readonly ttlSeconds: number
  /** Concurrent sessions of one user across every instance (WS_MAX_CONNECTIONS_PER_USER). */
  readonly maxConnectionsPerUser: number
}

/** The characters of a channel name (frames.ts ChannelName) and `*`. */
const PATTERN = /^[A-Za-z0-9:_.@*-]{1,200}$/

export function presenceConfigOf (parsed: { PRESENCE_CHANNELS?: string | undefined, PRESENCE_LEAVE_DELAY_MS: number, PRESENCE_TTL_SECONDS: number, WS_MAX_CONNECTIONS_PER_USER: number }, fail: (message: string) => Error): PresenceConfig {
  const channels = (parsed.PRESENCE_CHANNELS ?? '').split(',').map((pattern) => pattern.trim()).filter(Boolean)
  for (const pattern of channels) {
    const problem = PATTERN.test(pattern) ? new ChannelPattern(pattern).problem : 'not 1-200 of A-Z a-z 0-9 : _ . @ - *'
    if (problem !== undefined) throw fail(`Invalid configuration: PRESENCE_CHANNELS entry "${pattern.slice(0, 40)}" is not a channel pattern: ${problem}`)
  }
  return Object.freeze({
    channels: Object.freeze(channels),
    leaveDelayMs: parsed.PRESENCE_LEAVE_DELAY_MS,
    ttlSeconds: parsed.PRESENCE_TTL_SECONDS,
    maxConnectionsPerUser: parsed.WS_MAX_CONNECTIONS_PER_USER
  })
}
