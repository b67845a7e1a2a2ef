/**
 * A server-to-client text frame as bytes (RFC 6455 §5.2: FIN, opcode 1, no mask —
 * servers never mask), so one message's frame is built once and the same buffer
 * written to every recipient (issue 14) instead of framed and UTF-8 encoded per socket.
 */
export function textFrame (text: string): Buffer {
  const length = Buffer.byteLength(text)
  const headerLength = length < 126 ? 2 : length < 65_536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) {
    frame[1] = length
  } else if (length < 65_536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2)
    frame.writeUInt32BE(length >>> 0, 6)
  }
  frame.write(text, headerLength, 'utf8')
  return frame
}

let lastText: string | undefined
let lastFrame: Buffer | undefined

/**
 * The frame of `text`, reusing the previous one when the text is the same: a fan-out
 * loop hands every subscriber the same string, so its frame is built once per message.
 */
export function sharedTextFrame (text: string): Buffer {
  if (text !== lastText || lastFrame === undefined) {
    lastFrame = textFrame(text)
    lastText = text
  }
  return lastFrame
}
