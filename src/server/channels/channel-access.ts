import picomatch from 'picomatch'

/**
 * Who may subscribe to what (SPEC §5): a user's own `user:<sub>` and
 * `session:<sessionId>` channels, and channels matching the glob patterns of the
 * JWT's `channels` claim, captured when the ticket was issued. Patterns compile
 * once per connection.
 */
export class ChannelAccess {
  readonly #own: ReadonlySet<string>
  readonly #matches: (channel: string) => boolean

  constructor (identity: { readonly userId: string, readonly sessionId: string, readonly channelPatterns: readonly string[] }) {
    this.#own = new Set([`user:${identity.userId}`, `session:${identity.sessionId}`])
    // `:` separates channel segments the way `/` separates path segments for picomatch.
    const patterns = identity.channelPatterns.map((pattern) => pattern.replaceAll(':', '/'))
    const matcher = patterns.length === 0 ? undefined : picomatch(patterns, { dot: true })
    this.#matches = matcher === undefined ? () => false : (channel) => matcher(channel.replaceAll(':', '/'))
  }

  canSubscribe (channel: string): boolean {
    return this.#own.has(channel) || this.#matches(channel)
  }
}

/** The `channels` claim as a list of patterns; anything else grants nothing. */
export function channelPatternsOf (claim: unknown): string[] {
  if (!Array.isArray(claim)) return []
  return claim.filter((pattern): pattern is string => typeof pattern === 'string' && pattern.length > 0 && pattern.length <= 200).slice(0, 100)
}
