import t from 'tap'
import { ChannelPattern, ChannelPatternList } from '../../../src/server/channels/channel-pattern.js'
import { ChannelAccess, channelPatternsOf } from '../../../src/server/channels/channel-access.js'

await t.test('the SPEC §5 grammar, case by case', async (t) => {
  const table: Array<[pattern: string, name: string, matches: boolean]> = [
    // literal
    ['chat:lobby', 'chat:lobby', true],
    ['chat:lobby', 'chat:lobbyx', false],
    ['chat:lobby', 'chat', false],
    ['chat', 'chat:lobby', false],
    // `*` inside one segment, possibly empty, never across `:`
    ['chat:*', 'chat:lobby', true],
    ['chat:*', 'chat:', true],
    ['chat:*', 'chat', false],
    ['chat:*', 'chat:a:b', false],
    ['chat:*', 'news:a', false],
    ['*', 'chat', true],
    ['*', 'chat:lobby', false],
    ['*:*', 'a:b', true],
    ['*:*', 'a:b:c', false],
    ['chat:a*', 'chat:a', true],
    ['chat:a*', 'chat:abc', true],
    ['chat:a*', 'chat:ba', false],
    ['chat:*z', 'chat:xyz', true],
    ['chat:*z', 'chat:z', true],
    ['chat:*z', 'chat:zy', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['a*aa', 'aa', false],
    ['a*aa', 'aaa', true],
    ['*ab*ab*', 'abab', true],
    ['*ab*ab*', 'aba', false],
    ['room:*:members', 'room:42:members', true],
    ['room:*:members', 'room:42:x:members', false],
    ['t:*-*-*-*:x', 't:a-b-c-d:x', true],
    ['t:*-*-*-*:x', 't:a-b-c:x', false],
    // runs of `*` inside a segment act as one
    ['chat:a**', 'chat:abc', true],
    ['chat:a**', 'chat:abc:d', false],
    ['chat:**b', 'chat:ab', true],
    // a final `**` segment: one or more segments, never zero
    ['chat:**', 'chat:a', true],
    ['chat:**', 'chat:a:b:c', true],
    ['chat:**', 'chat:', true],
    ['chat:**', 'chat', false],
    ['chat:**', 'chatx:a', false],
    ['chat:*:**', 'chat:a:b', true],
    ['chat:*:**', 'chat:a', false],
    ['**', 'anything:at:all', true],
    ['**', 'x', true],
    // empty segments are literal like any other text
    ['chat:', 'chat:', true],
    ['chat:', 'chat', false],
    ['a::b', 'a::b', true],
    ['a::b', 'a:x:b', false],
    // glob syntax of other tools is literal text here
    ['chat:?', 'chat:a', false],
    ['chat:?', 'chat:?', true],
    ['chat:{a,b}', 'chat:a', false],
    ['chat:{a,b}', 'chat:{a,b}', true],
    ['chat:[ab]', 'chat:a', false],
    ['chat:+(a|b)', 'chat:a', false],
    ['!admin:*', 'chat:x', false],
    ['!admin:*', '!admin:x', true],
    ['chat:a\\*', 'chat:a*', false],
    ['chat:a\\*', 'chat:a\\b', true],
    ['a.b', 'aXb', false],
    ['a.b', 'a.b', true],
    ['chat:.*', 'chat:.x', true],
    ['chat:.*', 'chat:x', false],
    ['user:^$', 'user:^$', true]
  ]
  for (const [pattern, name, expected] of table) {
    t.equal(new ChannelPattern(pattern).matches(name), expected, `${JSON.stringify(pattern)} ${expected ? 'matches' : 'does not match'} ${JSON.stringify(name)}`)
  }
})

await t.test('malformed patterns match nothing, say why, and never throw', async (t) => {
  const malformed: Array<[pattern: string, problem: string]> = [
    ['', 'empty pattern'],
    ['a:**:b', '"**" is only allowed as the last segment'],
    ['**:a', '"**" is only allowed as the last segment'],
    ['a:**:**', '"**" is only allowed as the last segment']
  ]
  for (const [pattern, problem] of malformed) {
    const compiled = new ChannelPattern(pattern)
    t.equal(compiled.problem, problem, `${JSON.stringify(pattern)}: ${problem}`)
    t.equal(compiled.isLiteral, false)
    for (const name of ['', 'a', 'a:b', 'a:x:b', 'a:**:b', 'x:a', 'a:b:c:d']) t.equal(compiled.matches(name), false, `${JSON.stringify(pattern)} vs ${JSON.stringify(name)}`)
  }
  t.equal(new ChannelPattern('chat:**').problem, undefined, 'a final ** is well formed')
  t.equal(new ChannelPattern('a::b').problem, undefined, 'an empty segment is well formed (literal)')
})

await t.test('a pattern list matches when any of its patterns does; malformed entries grant nothing', async (t) => {
  const list = new ChannelPatternList(['news:*', 'room:7', 'room:7', 'a:**:b', '', 'team:*:**'])
  const table: Array<[string, boolean]> = [
    ['news:today', true],
    ['room:7', true],
    ['room:8', false],
    ['team:x:y', true],
    ['team:x', false],
    ['a:x:b', false],
    ['a:**:b', false],
    ['', false]
  ]
  for (const [name, expected] of table) t.equal(list.matches(name), expected, `${name} → ${String(expected)}`)
  t.equal(new ChannelPatternList([]).matches('news:today'), false, 'an empty list grants nothing')
})

await t.test('ChannelAccess: own user and session channels plus the claim patterns', async (t) => {
  const access = new ChannelAccess({ userId: 'alice', sessionId: 's1', channelPatterns: ['news:*', 'room:**'] })
  t.equal(access.canSubscribe('user:alice'), true)
  t.equal(access.canSubscribe('session:s1'), true)
  t.equal(access.canSubscribe('user:bob'), false)
  t.equal(access.canSubscribe('news:today'), true)
  t.equal(access.canSubscribe('room:1:chat'), true)
  t.equal(access.canSubscribe('room'), false)
  t.equal(new ChannelAccess({ userId: 'alice', sessionId: 's1', channelPatterns: [] }).canSubscribe('news:today'), false)
  t.same(channelPatternsOf(['a:*', '', 42, 'x'.repeat(201), 'b']), ['a:*', 'b'], 'the claim keeps non-empty strings of at most 200 characters')
  t.same(channelPatternsOf('a:*'), [])
})

/**
 * The grammar spelt out the slow, obvious way (a dynamic-programming table per
 * segment), to check the fast matcher against on random input.
 */
function referenceMatches (pattern: string, name: string): boolean {
  if (pattern === '') return false
  const patternSegments = pattern.split(':')
  const rest = patternSegments.at(-1) === '**'
  if (rest) patternSegments.pop()
  if (patternSegments.includes('**')) return false
  const nameSegments = name.split(':')
  if (rest ? nameSegments.length <= patternSegments.length : nameSegments.length !== patternSegments.length) return false
  return patternSegments.every((segment, index) => {
    const text = nameSegments[index]!
    // matched[j]: segment[0, i) matches text[0, j)
    let matched = Array.from({ length: text.length + 1 }, (_, j) => j === 0)
    for (const char of segment) {
      const next = Array.from({ length: text.length + 1 }, () => false)
      for (let j = 0; j <= text.length; j += 1) {
        if (char === '*') next[j] = matched[j]! || (j > 0 && next[j - 1]!)
        else next[j] = j > 0 && matched[j - 1]! && text[j - 1] === char
      }
      matched = next
    }
    return matched[text.length]!
  })
}

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random (seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let value = Math.imul(state ^ (state >>> 15), 1 | state)
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296
  }
}

function randomText (next: () => number, alphabet: string, maxLength: number): string {
  const length = Math.floor(next() * (maxLength + 1))
  let text = ''
  for (let index = 0; index < length; index += 1) text += alphabet[Math.floor(next() * alphabet.length)]!
  return text
}

await t.test('agrees with a dynamic-programming reference on 20000 random pairs', async (t) => {
  const next = random(9)
  let disagreements = 0
  let matches = 0
  for (let run = 0; run < 20_000; run += 1) {
    let pattern = randomText(next, 'ab:**', 8)
    if (next() < 0.2) pattern += ':**'
    const name = randomText(next, 'ab:', 8)
    const expected = referenceMatches(pattern, name)
    if (expected) matches += 1
    if (new ChannelPattern(pattern).matches(name) !== expected) {
      disagreements += 1
      if (disagreements <= 5) t.fail(`${JSON.stringify(pattern)} vs ${JSON.stringify(name)}: expected ${String(expected)}`)
    }
  }
  t.equal(disagreements, 0, 'no disagreement')
  t.ok(matches > 1000, `the sample has matches as well as misses (${matches})`)
})

/**
 * Wall time of one `matches` call in ms: the best of three means over `runs` calls
 * each, so a pause of the (shared) machine does not count against the matcher.
 */
function meanMs (pattern: ChannelPattern | ChannelPatternList, name: string, runs = 1000): number {
  for (let run = 0; run < 200; run += 1) pattern.matches(name)
  let best = Number.POSITIVE_INFINITY
  for (let batch = 0; batch < 3; batch += 1) {
    const started = performance.now()
    for (let run = 0; run < runs; run += 1) pattern.matches(name)
    best = Math.min(best, (performance.now() - started) / runs)
  }
  return best
}

// Bounds here only catch a super-linear matcher (picomatch took ~10 s for the first
// pair); the measured figures are in docs/protocol.md (bench/channel-patterns.ts).
await t.test('adversarial and random 200-character inputs stay far under 1 ms per match', async (t) => {
  const dots = 't:' + '.'.repeat(196) + ':y'
  const dashes = 't:' + 'a-'.repeat(97) + 'a:x'
  const adversarial: Array<[string, string]> = [
    ['t:*.*.*.*.*.*:x', dots],
    ['t:*.*.*.*.*.*:y', dots],
    ['t:*-*-*-*:x', dashes],
    ['t:*-*-*-*:x', dashes.replace(/x$/, 'y')],
    ['*' + 'a'.repeat(99) + 'b*', 'a'.repeat(200)],
    ['*' + 'a*'.repeat(99) + 'b', 'a'.repeat(200)],
    ['*' + 'ab*'.repeat(66), 'ab'.repeat(100)],
    ['a:**', 'a' + ':'.repeat(199)]
  ]
  t.equal(new ChannelPattern('t:*-*-*-*:x').matches(dashes), true, 'the dashes name matches')
  for (const [pattern, name] of adversarial) {
    t.ok(pattern.length <= 200 && name.length <= 200, 'inputs within the claim limits')
    const ms = meanMs(new ChannelPattern(pattern), name)
    t.ok(ms < 1, `${pattern.slice(0, 24)}… vs ${name.slice(0, 12)}…: ${(ms * 1000).toFixed(2)} µs`)
  }

  const next = random(200)
  let worst = 0
  for (let run = 0; run < 300; run += 1) {
    const pattern = randomText(next, run % 2 === 0 ? 'a*' : 'ab:*.', 200) || '*'
    const name = randomText(next, run % 2 === 0 ? 'a' : 'ab:.', 200)
    worst = Math.max(worst, meanMs(new ChannelPattern(pattern), name, 100))
  }
  t.ok(worst < 1, `random pairs: worst mean ${(worst * 1000).toFixed(2)} µs`)

  // A claim can hold 100 patterns: a whole subscribe check is still bounded.
  const list = new ChannelPatternList(Array.from({ length: 100 }, (_, index) => `t:*.*.*.*.*.*:${index}`))
  const listMs = meanMs(list, dots, 100)
  t.ok(listMs < 20, `100 adversarial patterns against one name: ${(listMs * 1000).toFixed(1)} µs`)
})

await t.test('compiled lists are shared by equal claims, never by different ones', async (t) => {
  t.equal(ChannelPatternList.of(['chat:*', 'news']), ChannelPatternList.of(['chat:*', 'news']), 'the same claim: one list')
  t.not(ChannelPatternList.of(['chat:*', 'news']), ChannelPatternList.of(['news', 'chat:*']), 'another order: another key')
  // A pattern may contain a newline: joined with one, these two lists would share a key.
  const joined = ChannelPatternList.of(['a\nb'])
  const split = ChannelPatternList.of(['a', 'b'])
  t.not(joined, split)
  t.equal(split.matches('a'), true)
  t.equal(joined.matches('a'), false)
})

await t.test('a connection\'s own channels are matched exactly, without a set of its own', async (t) => {
  const access = new ChannelAccess({ userId: 'alice', sessionId: 's-1', channelPatterns: [] })
  t.equal(access.canSubscribe('user:alice'), true)
  t.equal(access.canSubscribe('session:s-1'), true)
  for (const other of ['user:alic', 'user:alicex', 'user:xalice', 'user:', 'session:s-12', 'sessionXs-1', 'users:alice', 'user:s-1', 'session:alice']) {
    t.equal(access.canSubscribe(other), false, other)
  }
  t.equal(access.canPublish('user:alice'), false, 'own channels grant no publish')
  access.grant({ channel: 'room:1', publish: false })
  t.equal(access.canSubscribe('room:1'), true)
  t.equal(access.canPublish('room:1'), false)
  access.grant({ channel: 'room:1', publish: true })
  access.grant({ channel: 'room:1', publish: false })
  t.equal(access.canPublish('room:1'), true, 'a later token without publish takes nothing away')
})
