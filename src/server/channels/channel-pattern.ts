/**
 * Channel patterns (SPEC §5 grammar), used for the JWT `channels` claim and meant
 * for `publish` claims and `PRESENCE_CHANNELS` too:
 *
 * - segments are separated by `:`;
 * - `*` matches any run of characters, possibly empty, inside one segment (never a `:`);
 *   several `*` in a row act as one;
 * - a final segment that is exactly `**` matches one or more remaining segments;
 * - every other character is literal: no `?`, braces, classes, negation or escapes.
 *
 * A malformed pattern (empty, or a `**` segment that is not the last) matches
 * nothing: a claim can only grant what it spells out, and a typo never throws on
 * the subscribe path. `problem` says why, so configuration can refuse it at boot.
 *
 * Patterns come from tokens, so matching must stay cheap whatever they contain
 * (SPEC §5: at most 0.1 ms for a pattern and a name of 200 characters each). No
 * RegExp is built: each wildcard segment is its literal chunks, checked with
 * `startsWith`/`indexOf` (leftmost match per chunk, no backtracking), so the cost
 * is bounded by the pattern length times the name length and never exponential.
 */
import { LRUCache } from 'lru-cache'


/** A `:` segment: exact text, or the literal chunks between its `*`s. */
type Segment =
  | { readonly kind: 'literal', readonly text: string }
  | {
    readonly kind: 'wildcard'
    /** Before the first `*`: the segment starts with it. */
    readonly head: string
    /** Between `*`s, non-empty, in order: found left to right. */
    readonly inner: readonly string[]
    /** After the last `*`: the segment ends with it. */
    readonly tail: string
    /** Characters the chunks need, so head and tail never overlap. */
    readonly minLength: number
  }

const SEPARATOR = ':'
const REST = '**'

function compileSegment (text: string): Segment {
  if (!text.includes('*')) return { kind: 'literal', text }
  const chunks = text.split('*')
  const head = chunks[0] ?? ''
  const tail = chunks[chunks.length - 1] ?? ''
  const inner = chunks.slice(1, -1).filter((chunk) => chunk !== '')
  const minLength = inner.reduce((sum, chunk) => sum + chunk.length, head.length + tail.length)
  return { kind: 'wildcard', head, inner, tail, minLength }
}

/** Whether `name[start, end)` (one segment of it) matches `segment`. */
function segmentMatches (segment: Segment, name: string, start: number, end: number): boolean {
  if (segment.kind === 'literal') return end - start === segment.text.length && name.startsWith(segment.text, start)
  if (end - start < segment.minLength) return false
  const tailStart = end - segment.tail.length
  if (!name.startsWith(segment.head, start) || !name.startsWith(segment.tail, tailStart)) return false
  let position = start + segment.head.length
  for (const chunk of segment.inner) {
    // The leftmost occurrence leaves the most room for the chunks after it, so a
    // miss here is a miss for the segment: nothing to retry.
    const found = name.indexOf(chunk, position)
    if (found === -1 || found + chunk.length > tailStart) return false
    position = found + chunk.length
  }
  return true
}

export class ChannelPattern {
  readonly source: string
  /** Why this pattern matches nothing; undefined when it is well formed. */
  readonly problem: string | undefined
  /** Well formed and without `*`: matches exactly its own text. */
  readonly isLiteral: boolean
  readonly #segments: readonly Segment[]
  /** Ends with a `**` segment: one or more further segments of any content. */
  readonly #rest: boolean

  constructor (source: string) {
    this.source = source
    const texts = source.split(SEPARATOR)
    const rest = texts[texts.length - 1] === REST
    if (rest) texts.pop()
    this.#rest = rest
    this.problem = source === ''
      ? 'empty pattern'
      : texts.includes(REST) ? '"**" is only allowed as the last segment' : undefined
    this.#segments = this.problem === undefined ? texts.map(compileSegment) : []
    this.isLiteral = this.problem === undefined && !rest && !source.includes('*')
  }

  matches (name: string): boolean {
    if (this.problem !== undefined) return false
    // Walk the name's segments in place: no split, no substrings.
    let start = 0
    for (const segment of this.#segments) {
      if (start > name.length) return false
      let end = name.indexOf(SEPARATOR, start)
      if (end === -1) end = name.length
      if (!segmentMatches(segment, name, start, end)) return false
      start = end + 1
    }
    // `start` is one past the name's end exactly when every segment was used.
    return this.#rest ? start <= name.length : start === name.length + 1
  }
}

/** Distinct claims kept compiled; past it the oldest is dropped (and compiled again when seen). */
const SHARED_LISTS_MAX = 1000

/**
 * Several patterns as one grant: a name matches when any pattern does. Literal
 * patterns are one set lookup; the rest are tried in order.
 */
export class ChannelPatternList {
  static readonly #shared = new LRUCache<string, ChannelPatternList>({ max: SHARED_LISTS_MAX })

  /**
   * The compiled list for these patterns, shared: a list never changes once built,
   * and most connections carry one of a few claims (every user of a role has the same
   * `channels`), so a connection holds a reference instead of its own sets and patterns.
   */
  static of (sources: readonly string[]): ChannelPatternList {
    // JSON, not a join: no two different lists of strings share a key.
    const key = JSON.stringify(sources)
    let list = ChannelPatternList.#shared.get(key)
    if (list === undefined) {
      list = new ChannelPatternList(sources)
      ChannelPatternList.#shared.set(key, list)
    }
    return list
  }

  readonly #exact: ReadonlySet<string>
  readonly #wildcards: readonly ChannelPattern[]

  constructor (sources: Iterable<string>) {
    const exact = new Set<string>()
    const wildcards = new Map<string, ChannelPattern>()
    for (const source of sources) {
      const pattern = new ChannelPattern(source)
      if (pattern.isLiteral) exact.add(source)
      else if (pattern.problem === undefined) wildcards.set(source, pattern)
    }
    this.#exact = exact
    this.#wildcards = [...wildcards.values()]
  }

  matches (name: string): boolean {
    if (this.#exact.has(name)) return true
    for (const pattern of this.#wildcards) if (pattern.matches(name)) return true
    return false
  }
}
