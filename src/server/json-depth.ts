/**
 * SPEC §5: JSON nested deeper than 64 levels is bad input (BAD_MESSAGE on a
 * WebSocket, 400 over HTTP). Levels are counted below the top-level value, the
 * frame or body itself: in `{"type":"send","id":1,"data":X}` or a single-message
 * publish body, X may nest 64 levels and no more.
 *
 * V8's JSON.parse copes with any depth, but the gateway re-serializes what it
 * accepts (JSON.stringify of `data` into the inbound stream or a channel's history),
 * and JSON.stringify recurses: a few thousand levels throw a RangeError, which
 * used to surface as INTERNAL_ERROR / 500. Rejecting deep input up front keeps
 * every later step shallow.
 */
export const MAX_JSON_DEPTH = 64

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d

/**
 * Whether JSON `text` nests more than `maxDepth` levels below its top-level value.
 * One pass over the characters, counting brackets outside strings; it stops at the
 * first level too deep. On text that is not JSON the answer means nothing (the
 * parser rejects that text anyway).
 */
export function jsonDepthExceeds (text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  // The top-level container is level 0: one more open bracket than maxDepth is allowed.
  const limit = maxDepth + 1
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index += 1) {
    const char = text.charCodeAt(index)
    if (inString) {
      if (char === BACKSLASH) index += 1
      else if (char === QUOTE) inString = false
    } else if (char === QUOTE) {
      inString = true
    } else if (char === OPEN_BRACE || char === OPEN_BRACKET) {
      depth += 1
      if (depth > limit) return true
    } else if (char === CLOSE_BRACE || char === CLOSE_BRACKET) {
      depth -= 1
    }
  }
  return false
}
