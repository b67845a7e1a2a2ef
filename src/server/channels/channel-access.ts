import { ChannelPatternList } from './channel-pattern.js'

/**
 * Who may subscribe to what (SPEC §5): a user's own `user:<sub>` and
 * `session:<sessionId>` channels, and channels matching the patterns of the JWT's
 * `channels` claim (channel-pattern.ts), captured when the ticket was issued.
 * Patterns compile once per connection (per request for polls).
 */
export class ChannelAccess {
  readonly #own: ReadonlySet<string>
  readonly #granted: ChannelPatternList

  constructor (identity: { readonly userId: string, readonly sessionId: string, readonly channelPatterns: readonly string[] }) {
    this.#own = new Set([`user:${identity.userId}`, `session:${identity.sessionId}`])
    this.#granted = new ChannelPatternList(identity.channelPatterns)
  }

  canSubscribe (channel: string): boolean {
    return this.#own.has(channel) || this.#granted.matches(channel)
  }
}

/** The `channels` claim as a list of patterns; anything else grants nothing. */
export function channelPatternsOf (claim: unknown): string[] {
  if (!Array.isArray(claim)) return []
  return claim.filter((pattern): pattern is string => typeof pattern === 'string' && pattern.length > 0 && pattern.length <= 200).slice(0, 100)
}
