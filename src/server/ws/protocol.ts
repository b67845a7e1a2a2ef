import { Compile } from 'typebox/compile'
import { clientFrameSchemas, type ClientFrame, type ClientFrameType } from '../../protocol/frames.js'
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../json-depth.js'

export type ParseResult =
  | { readonly ok: true, readonly frame: ClientFrame }
  | { readonly ok: false, readonly id?: string | number, readonly reason: string }

const validators = Object.fromEntries(
  Object.entries(clientFrameSchemas).map(([type, schema]) => [type, Compile(schema)])
) as { [T in ClientFrameType]: ReturnType<typeof Compile> }

function requestIdOf (value: Record<string, unknown>): string | number | undefined {
  const id = value.id
  return typeof id === 'string' || typeof id === 'number' ? id : undefined
}

/**
 * Turns a text frame into a typed client frame or a BAD_MESSAGE reason (SPEC §5).
 * Never throws: bad input is answered, never fatal.
 */
export function parseClientFrame (text: string): ParseResult {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'invalid JSON' }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'frame must be a JSON object' }
  }
  const record = value as Record<string, unknown>
  const id = requestIdOf(record)
  // After the parse (which handles any depth) so the answer still carries the id.
  if (jsonDepthExceeds(text)) return { ok: false, id, reason: `JSON nested deeper than ${MAX_JSON_DEPTH} levels` }
  const type = record.type
  if (typeof type !== 'string' || !Object.hasOwn(validators, type)) {
    return { ok: false, id, reason: typeof type === 'string' ? `unknown type "${type.slice(0, 32)}"` : 'missing type' }
  }
  if (!validators[type as ClientFrameType].Check(value)) {
    return { ok: false, id, reason: `invalid ${type} frame` }
  }
  return { ok: true, frame: value as ClientFrame }
}
