/**
 * Channel messages as publish.lua writes them (docs/redis.md): the history entry's
 * fields and the live pub/sub payload, read back into ChannelMessages. A client
 * publish (SPEC §9) adds its `from`; a backend publish is written as before it existed.
 */
import { parseOffset } from '../../protocol/offsets.js'
import type { ChannelMessage, EventFields, StoredRevocation } from './engine.js'

/** The `from` JSON text publish.lua stored; null when it is not a JSON string (never written so). */
function parseFrom (text: string): string | null {
  try {
    const from: unknown = JSON.parse(text)
    return typeof from === 'string' ? from : null
  } catch {
    return null
  }
}

/** A history entry's fields, `d` (data) and, for a client publish, `f` (from JSON). */
export function storedMessage (channel: string, epoch: string, seq: number, fields: readonly string[]): ChannelMessage {
  let data = 'null'
  let from: string | null = null
  for (let index = 0; index + 1 < fields.length; index += 2) {
    const value = fields[index + 1] ?? ''
    if (fields[index] === 'd') data = value
    else if (fields[index] === 'f') from = parseFrom(value)
  }
  return from === null ? { channel, epoch, seq, data } : { channel, epoch, seq, data, from }
}

/**
 * A live payload: `<offset>\n<data>`, or `<offset> <from JSON>\n<data>` for a client
 * publish (JSON text of a string holds no raw newline). Null when it is neither.
 */
export function liveMessage (channel: string, payload: string): ChannelMessage | null {
  const newline = payload.indexOf('\n')
  if (newline === -1) return null
  const header = payload.slice(0, newline)
  const space = header.indexOf(' ')
  const position = parseOffset(space === -1 ? header : header.slice(0, space))
  if (position === null) return null
  const data = payload.slice(newline + 1)
  if (space === -1) return { channel, ...position, data }
  const from = parseFrom(header.slice(space + 1))
  return from === null ? null : { channel, ...position, data, from }
}

/** load-revocations.lua's flat answer (member, ms left, ...) as bans; unknown kinds are skipped. */
export function revocationsOf (flat: ReadonlyArray<string | number>): StoredRevocation[] {
  const active: StoredRevocation[] = []
  for (let index = 0; index + 1 < flat.length; index += 2) {
    const member = String(flat[index])
    const separator = member.indexOf(':')
    const kind = member.slice(0, separator)
    if (kind !== 'user' && kind !== 'session') continue
    active.push({ target: { kind, id: member.slice(separator + 1) }, remainingMs: Number(flat[index + 1]) })
  }
  return active
}

/** A stream entry's flat field list as an object, order kept. */
export function eventFieldsOf (flat: readonly string[]): EventFields {
  const fields: Record<string, string> = {}
  for (let index = 0; index + 1 < flat.length; index += 2) fields[flat[index] ?? ''] = flat[index + 1] ?? ''
  return fields
}
