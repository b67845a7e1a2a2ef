import type { IncomingMessage, ServerResponse } from 'node:http'

/**
 * The peers' stand-in for `POST /v1/publish` (bare `ws`, Socket.IO): `POST /publish
 * {channel, data}` numbers the message `0:<n>`, hands it to `deliver` and answers
 * `{channel, offset}`; anything else is a 404. `offset()` is the last number given,
 * what a `subscribed` answer reports.
 */
export class PublishEndpoint {
  #seq = 0
  readonly #deliver: (channel: string, offset: string, data: unknown) => void

  constructor (deliver: (channel: string, offset: string, data: unknown) => void) {
    this.#deliver = deliver
  }

  offset (): string {
    return `0:${this.#seq}`
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST' || req.url !== '/publish') { res.writeHead(404).end(); return }
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => { chunks.push(chunk) })
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { channel: string, data: unknown }
      const offset = `0:${++this.#seq}`
      this.#deliver(body.channel, offset, body.data)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ channel: body.channel, offset }))
    })
  }
}
