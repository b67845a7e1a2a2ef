import { ChannelPatternList } from './channel-pattern.js'

/** What a subscription token (SPEC §9) adds to a connection's rights on one channel. */
export interface ChannelGrant {
  readonly channel: string
  /** The token's `publish: true`: this connection may also publish to the channel. */
  readonly publish: boolean
}

/**
 * Who may subscribe to and publish on what (SPEC §5, §9): a user's own `user:<sub>` and
 * `session:<sessionId>` channels, channels matching the patterns of the JWT's
 * `channels` claim (channel-pattern.ts), captured when the ticket was issued, and the
 * channels of subscription tokens presented on this connection. Publishing needs the
 * `publish` claim's patterns or a token with `publish: true`; a user's own channels
 * grant no publish. The compiled pattern lists are shared by every connection with the
 * same claim (ChannelPatternList.of); what is this connection's own is two ids and,
 * once a token is presented, a map: an idle connection holds no set of its own.
 */
export class ChannelAccess {
  readonly #userId: string
  readonly #sessionId: string
  readonly #granted: ChannelPatternList
  readonly #publish: ChannelPatternList
  /** Channels of subscription tokens, and whether each allows publishing; made on the first. */
  #tokens: Map<string, boolean> | undefined

  constructor (identity: { readonly userId: string, readonly sessionId: string, readonly channelPatterns: readonly string[], readonly publishPatterns?: readonly string[] }) {
    this.#userId = identity.userId
    this.#sessionId = identity.sessionId
    this.#granted = ChannelPatternList.of(identity.channelPatterns)
    this.#publish = ChannelPatternList.of(identity.publishPatterns ?? [])
  }

  canSubscribe (channel: string): boolean {
    return this.#isOwn(channel) || this.#tokens?.has(channel) === true || this.#granted.matches(channel)
  }

  canPublish (channel: string): boolean {
    return this.#tokens?.get(channel) === true || this.#publish.matches(channel)
  }

  /**
   * A verified subscription token's rights, kept for this connection's life (like the
   * ticket, it is checked once). A later token without `publish` never takes publishing away.
   */
  grant (grant: ChannelGrant): void {
    this.#tokens ??= new Map()
    this.#tokens.set(grant.channel, grant.publish || this.#tokens.get(grant.channel) === true)
  }

  /** `user:<sub>` or `session:<sessionId>`, compared in place (no string built per check). */
  #isOwn (channel: string): boolean {
    return isPrefixed(channel, 'user:', this.#userId) || isPrefixed(channel, 'session:', this.#sessionId)
  }
}

function isPrefixed (channel: string, prefix: string, id: string): boolean {
  return channel.length === prefix.length + id.length && channel.startsWith(prefix) && channel.endsWith(id)
}

/** The `channels` (or `publish`) claim as a list of patterns; anything else grants nothing. */
export function channelPatternsOf (claim: unknown): string[] {
  if (!Array.isArray(claim)) return []
  return claim.filter((pattern): pattern is string => typeof pattern === 'string' && pattern.length > 0 && pattern.length <= 200).slice(0, 100)
}
