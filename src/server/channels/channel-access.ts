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
 * grant no publish. Patterns compile once per connection (per request for polls).
 */
export class ChannelAccess {
  readonly #own: ReadonlySet<string>
  readonly #granted: ChannelPatternList
  readonly #publish: ChannelPatternList
  /** Channels of subscription tokens, and whether each allows publishing. */
  readonly #tokens = new Map<string, boolean>()

  constructor (identity: { readonly userId: string, readonly sessionId: string, readonly channelPatterns: readonly string[], readonly publishPatterns?: readonly string[] }) {
    this.#own = new Set([`user:${identity.userId}`, `session:${identity.sessionId}`])
    this.#granted = new ChannelPatternList(identity.channelPatterns)
    this.#publish = new ChannelPatternList(identity.publishPatterns ?? [])
  }

  canSubscribe (channel: string): boolean {
    return this.#own.has(channel) || this.#tokens.has(channel) || this.#granted.matches(channel)
  }

  canPublish (channel: string): boolean {
    return this.#tokens.get(channel) === true || this.#publish.matches(channel)
  }

  /**
   * A verified subscription token's rights, kept for this connection's life (like the
   * ticket, it is checked once). A later token without `publish` never takes publishing away.
   */
  grant (grant: ChannelGrant): void {
    this.#tokens.set(grant.channel, grant.publish || this.#tokens.get(grant.channel) === true)
  }
}

/** The `channels` (or `publish`) claim as a list of patterns; anything else grants nothing. */
export function channelPatternsOf (claim: unknown): string[] {
  if (!Array.isArray(claim)) return []
  return claim.filter((pattern): pattern is string => typeof pattern === 'string' && pattern.length > 0 && pattern.length <= 200).slice(0, 100)
}
