/**
 * CPU per channel-pattern match at the claim limits (SPEC §5: a pattern and a
 * name of 200 characters each must cost at most 0.1 ms), for docs/protocol.md:
 *
 *   npx tsx bench/channel-patterns.ts
 *
 * Hand-made worst cases (the two patterns that froze picomatch, and inputs that
 * make a substring search do pattern × name work), then a search over random
 * 200-character pairs whose most expensive ones are measured again. One core,
 * about 15 s; not part of bench/run.ts.
 */
import { ChannelPattern, ChannelPatternList } from '../src/server/channels/channel-pattern.js'
import { measureSync, type Measurement } from './lib/measure.js'
import { table } from './lib/setup.js'

interface Case { readonly name: string, readonly pattern: string, readonly channel: string }

const dots = 't:' + '.'.repeat(196) + ':y'
const dashes = 't:' + '-'.repeat(196) + ':y'
const cases: Case[] = [
  { name: 't:*.*.*.*.*.*:x vs t:<196 dots>:y (picomatch: ~10 s)', pattern: 't:*.*.*.*.*.*:x', channel: dots },
  { name: 't:*-*-*-*:x vs t:<196 dashes>:y (picomatch: ~30 ms)', pattern: 't:*-*-*-*:x', channel: dashes },
  { name: 't:*-*-*-*:x vs t:<196 dashes>:x (match)', pattern: 't:*-*-*-*:x', channel: dashes.replace(/y$/, 'x') },
  { name: '*a{98}b* vs a{200} (search: 100 starts × 99 chars)', pattern: '*' + 'a'.repeat(98) + 'b*', channel: 'a'.repeat(200) },
  { name: '*(ab*){66} vs (ab){100} (66 chunks)', pattern: '*' + 'ab*'.repeat(66), channel: 'ab'.repeat(100) },
  { name: '*(a*){99}b vs a{200}', pattern: '*' + 'a*'.repeat(99) + 'b', channel: 'a'.repeat(200) },
  { name: '(*:){99}* vs :{199} (100 segments)', pattern: '*:'.repeat(99) + '*', channel: ':'.repeat(199) },
  { name: 'a:** vs a:{199} (rest)', pattern: 'a:**', channel: 'a' + ':'.repeat(199) },
  { name: 'literal a{199}b vs a{200}', pattern: 'a'.repeat(199) + 'b', channel: 'a'.repeat(200) }
]

/** Deterministic pseudo-random numbers (mulberry32). */
function random (seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let value = Math.imul(state ^ (state >>> 15), 1 | state)
    value = (value + Math.imul(value ^ (value >>> 7), 61 | value)) ^ value
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296
  }
}

function text (next: () => number, alphabet: string, length: number): string {
  let result = ''
  for (let index = 0; index < length; index += 1) result += alphabet[Math.floor(next() * alphabet.length)]!
  return result
}

/** Random 200/200 pairs over small alphabets (dense in stars and separators): the costliest few. */
function costliestRandomPairs (count: number, keep: number): Case[] {
  const next = random(42)
  const families = [['a*', 'a'], ['ab*', 'ab'], ['a:*', 'a:'], ['a.-*', 'a.-'], ['a*', 'ab']] as const
  const timed: Array<{ micros: number, case: Case }> = []
  for (let index = 0; index < count; index += 1) {
    const [patternAlphabet, nameAlphabet] = families[index % families.length]!
    const pattern = text(next, patternAlphabet, 200)
    const channel = text(next, nameAlphabet, 200)
    const compiled = new ChannelPattern(pattern)
    for (let run = 0; run < 50; run += 1) compiled.matches(channel)
    const started = performance.now()
    for (let run = 0; run < 200; run += 1) compiled.matches(channel)
    timed.push({ micros: (performance.now() - started) * 5, case: { name: `random ${patternAlphabet}/${nameAlphabet} #${index}`, pattern, channel } })
  }
  return timed.sort((a, b) => b.micros - a.micros).slice(0, keep).map((entry) => entry.case)
}

const rows: string[][] = []
let worst: Measurement | undefined
const add = (measurement: Measurement, note: string): void => {
  if (worst === undefined || measurement.cpuMicros > worst.cpuMicros) worst = measurement
  rows.push([measurement.name, String(measurement.operations), measurement.cpuMicros.toFixed(2), note])
  process.stderr.write(`${measurement.name}: ${measurement.cpuMicros.toFixed(2)} µs\n`)
}

for (const { name, pattern, channel } of [...cases, ...costliestRandomPairs(5000, 5)]) {
  const compiled = new ChannelPattern(pattern)
  add(measureSync(name, () => compiled.matches(channel), 200_000, 400), String(compiled.matches(channel)))
}

// A claim holds at most 100 patterns: a whole subscribe check against the worst name.
const list = new ChannelPatternList(Array.from({ length: 100 }, (_, index) => `t:*.*.*.*.*.*:x${index}`))
const listResult = measureSync('100 patterns t:*.*.*.*.*.*:x<n> vs t:<196 dots>:y (whole claim)', () => list.matches(dots), 50_000, 600)
rows.push([listResult.name, String(listResult.operations), listResult.cpuMicros.toFixed(2), String(list.matches(dots))])

console.log(`# Channel pattern matching — node ${process.version}\n`)
console.log(table(['pattern vs channel', 'operations', 'CPU µs/match', 'matches'], rows))
console.log(`\nWorst single pattern: ${worst?.cpuMicros.toFixed(2) ?? '?'} µs (${worst?.name ?? '?'}); SPEC §5 bound: 100 µs.`)
