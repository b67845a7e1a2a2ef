// Compiled by tsconfig.check.json (`npm run typecheck`), never run: RealtimeClient<Messages>
// types `data` per channel, and the `@ts-expect-error` lines prove wrong uses are refused
// (an expectation that stops failing fails the typecheck).
import WebSocket from 'ws'
import { RealtimeClient, type ChannelMessage, type SendAck, type SubscribedInfo } from '../../../packages/client/src/index.js'

type Messages = {
  'chat:lobby': { text: string, from: string }
  'prices:eur': { bid: number, ask: number }
  [room: `room:${string}`]: { kind: 'joined' | 'left', userId: string }
}

const options = { url: 'https://rt.example.com', getToken: async (): Promise<string> => 'jwt', WebSocket }
const typed = new RealtimeClient<Messages>(options)

typed.on('message', (message) => {
  // A union discriminated by channel: checking it narrows data.
  if (message.channel === 'chat:lobby') {
    const text: string = message.data.text
    // @ts-expect-error chat messages have no bid
    void message.data.bid
    void text
  } else if (message.channel === 'prices:eur') {
    const spread: number = message.data.ask - message.data.bid
    void spread
  } else {
    const room: `room:${string}` = message.channel
    const kind: 'joined' | 'left' = message.data.kind
    void room
    void kind
  }
  // @ts-expect-error data is a union until the channel is checked
  void message.data.text
})

const subscribed: Promise<SubscribedInfo> = typed.subscribe('chat:lobby')
void subscribed
void typed.subscribe('room:42', { since: '0a1b:17' })
// @ts-expect-error not a channel of Messages
void typed.subscribe('chat:other')
// @ts-expect-error since is a string offset
void typed.subscribe('chat:lobby', { since: 17 })
// @ts-expect-error no other option
void typed.subscribe('chat:lobby', { from: 'now' })
typed.unsubscribe('prices:eur')
// @ts-expect-error not a channel of Messages
typed.unsubscribe('prices:usd')

// send() resolves to the ack.
const ack: Promise<SendAck> = typed.send({ text: 'hi' })
void ack.then(({ id }) => id.length)

// @ts-expect-error Messages is an object type
void new RealtimeClient<string>(options)

// An interface works as a map too (no index signature needed).
interface Chat { 'chat:lobby': { text: string } }
const chat = new RealtimeClient<Chat>(options)
chat.on('message', (message) => { const text: string = message.data.text; void text })

// The default keeps today's typing: any channel, data unknown, code unchanged.
const plain = new RealtimeClient(options)
void plain.subscribe('anything:at-all')
plain.on('message', (message: ChannelMessage) => {
  const channel: string = message.channel
  const data: unknown = message.data
  // @ts-expect-error data is unknown until the app checks it
  void data.text
  void channel
})
// A typed client goes wherever a plain one is expected (e.g. RealtimeProvider's `client`).
const asPlain: RealtimeClient = typed
void asPlain
