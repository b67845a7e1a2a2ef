import t from 'tap'
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../src/server/json-depth.js'
import { parseClientFrame } from '../../src/server/ws/protocol.js'

/** `levels` nested arrays: `[[[]]]` for 3. */
function nested (levels: number): string {
  return '['.repeat(levels) + ']'.repeat(levels)
}

await t.test('levels count below the top-level value, up to 64', async (t) => {
  t.equal(MAX_JSON_DEPTH, 64)
  t.equal(jsonDepthExceeds(`{"data":${nested(64)}}`), false, 'data nesting 64 levels')
  t.equal(jsonDepthExceeds(`{"data":${nested(65)}}`), true, 'data nesting 65 levels')
  t.equal(jsonDepthExceeds(nested(65)), false, 'a top-level array holding 64 levels')
  t.equal(jsonDepthExceeds(nested(66)), true, 'a top-level array holding 65 levels')
  t.equal(jsonDepthExceeds(`{"a":${'{"b":'.repeat(64)}1${'}'.repeat(64)}}`), false, 'objects count like arrays (64)')
  t.equal(jsonDepthExceeds(`{"a":${'{"b":'.repeat(65)}1${'}'.repeat(65)}}`), true, 'objects count like arrays (65)')
  t.equal(jsonDepthExceeds(`{"a":${nested(64)},"b":${nested(64)}}`), false, 'siblings do not add up')
  t.equal(jsonDepthExceeds(nested(200_000)), true, 'very deep input stops early')
  t.equal(jsonDepthExceeds('{"a":[[1]]}', 1), true, 'the limit is a parameter')
  t.equal(jsonDepthExceeds('{"a":[1]}', 1), false)
  for (const scalar of ['1', '"text"', 'null', '']) t.equal(jsonDepthExceeds(scalar), false, `scalar ${JSON.stringify(scalar)}`)
})

await t.test('brackets inside strings, escaped quotes included, do not count', async (t) => {
  const deepText = JSON.stringify({ text: nested(100) })
  t.equal(jsonDepthExceeds(deepText), false, 'brackets in a string value')
  t.equal(jsonDepthExceeds(JSON.stringify({ [nested(100)]: 1 })), false, 'brackets in a key')
  t.equal(jsonDepthExceeds(JSON.stringify({ text: `"${nested(100)}"` })), false, 'after an escaped quote, still inside the string')
  t.equal(jsonDepthExceeds(JSON.stringify({ text: '\\', data: JSON.parse(nested(65)) as unknown })), true, 'an escaped backslash ends before the closing quote')
})

await t.test('parseClientFrame: too deep is a BAD_MESSAGE reason carrying the id', async (t) => {
  t.same(parseClientFrame(`{"type":"send","id":"deep","data":${nested(65)}}`), { ok: false, id: 'deep', reason: 'JSON nested deeper than 64 levels' })
  t.same(parseClientFrame(`{"type":"ping","extra":${nested(65)}}`), { ok: false, id: undefined, reason: 'JSON nested deeper than 64 levels' })
  t.match(parseClientFrame(`{"type":"send","id":"ok","data":${nested(64)}}`), { ok: true, frame: { type: 'send', id: 'ok' } })
})
