/**
 * The consumer app's own files, written into the temp project by the tests: what an
 * app using the installed packages would write. Kept as text so the repo's tsconfig
 * and lint never see them (they import packages only the temp project has).
 */

/** A strict app's tsconfig: as a bundler sees it (`preserve`/`bundler`) or as Node does (`node16`). */
export function tsconfigFor (resolution: 'bundler' | 'node16', files: readonly string[]): string {
  return `${JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      module: resolution === 'bundler' ? 'preserve' : 'node16',
      moduleResolution: resolution,
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      types: [],
      jsx: 'react-jsx',
      strict: true,
      skipLibCheck: false,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      verbatimModuleSyntax: true,
      noEmit: true
    },
    files
  }, null, 2)}\n`
}

/** RealtimeClient, its options, events and errors, as typed by the installed declarations. */
export const typedClientSource = `
import { AuthenticationError, RealtimeClient, type ChannelMessage, type ClientStatus, type RealtimeClientOptions, type SubscribedInfo } from '@realtime-gateway/client'

const options: RealtimeClientOptions = {
  url: 'https://rt.example.com',
  getToken: async ({ forceRefresh }) => forceRefresh ? 'fresh-jwt' : 'jwt',
  maxReconnectAttempts: 5,
  backoff: { initialMs: 1000, maxMs: 16000 },
  heartbeat: { intervalMs: 25000 }
}
export const client = new RealtimeClient(options)
const stop: () => void = client.on('message', (message: ChannelMessage) => {
  const where: string = \`\${message.channel}@\${message.offset}\`
  console.log(where, message.data)
})
client.on('status', (status: ClientStatus) => { if (status === 'closed') stop() })
client.on('subscribed', ({ channel, recovered }) => { if (!recovered) console.log('refetch', channel) })
client.on('error', (error) => { if (error instanceof AuthenticationError) client.close() })

export async function start (): Promise<SubscribedInfo> {
  await client.connect()
  const info = await client.subscribe('user:alice')
  await client.send({ kind: 'hello' })
  return info
}
`

/** The provider and hooks in a .tsx component tree, with react-jsx. */
export const typedReactSource = `
import { useState, type ReactElement } from 'react'
import { RealtimeProvider, useChannel, useConnectionStatus, useRealtime, useSend, type ChannelState } from '@realtime-gateway/react'
import type { ClientStatus, RealtimeClient, SendAck } from '@realtime-gateway/client'

function Room ({ id }: { readonly id: string }): ReactElement {
  const [lines, setLines] = useState<string[]>([])
  const channel: ChannelState = useChannel(\`room:\${id}\`, ({ data, offset }) => { setLines((all) => [...all, \`\${offset} \${String(data)}\`]) })
  const status: ClientStatus = useConnectionStatus()
  const client: RealtimeClient = useRealtime()
  const send: (data: unknown) => Promise<SendAck> = useSend()
  const label = channel.status === 'subscribed' ? String(channel.info.recovered) : channel.status === 'failed' ? channel.error.code : channel.status
  return (
    <section data-status={status}>
      <p>{label}</p>
      <ul>{lines.map((line) => <li key={line}>{line}</li>)}</ul>
      <button onClick={() => { void send({ room: id }) }}>send</button>
      <button onClick={() => { console.log(client.getConnectionStatus().status) }}>debug</button>
    </section>
  )
}

export function App (): ReactElement {
  return (
    <RealtimeProvider options={{ url: 'https://rt.example.com', getToken: async () => 'jwt' }}>
      <Room id='lobby' />
    </RealtimeProvider>
  )
}
`

/** Two deliberate mistakes the packages' types must catch. */
export const typeErrorSource = `
import { RealtimeClient } from '@realtime-gateway/client'

const client = new RealtimeClient({ url: 'https://rt.example.com', getToken: async () => 'jwt', wsPath: 42 })
client.on('no-such-event', () => {})
`

/**
 * A Node 20 app: ws injected, connect, subscribe, one message the test publishes, one
 * acknowledged send. Each step is a JSON line on stdout; the test publishes once it
 * reads `subscribed`.
 */
export const nodeConsumerSource = `
import WebSocket from 'ws'
import { RealtimeClient } from '@realtime-gateway/client'

const print = (line) => { process.stdout.write(JSON.stringify(line) + '\\n') }
const channel = process.env.CHANNEL
const client = new RealtimeClient({ url: process.env.GATEWAY_URL, getToken: async () => process.env.GATEWAY_JWT, WebSocket, page: null })
const message = new Promise((resolve) => { client.on('message', resolve) })
client.on('status', (status) => { print({ step: 'status', status }) })

await client.connect()
const info = await client.subscribe(channel)
print({ step: 'subscribed', channel: info.channel, recovered: info.recovered })
print({ step: 'message', ...await message })
await client.send({ text: 'hello from the consumer' })
print({ step: 'acked' })
client.close()
`

/**
 * A React app built from the installed packages. The page passes the gateway's URL,
 * a JWT and the channel in \`window.consumer\`; it renders the connection status, the
 * channel's state and every message.
 */
export const browserAppSource = `
import { useState } from 'react'
import { createRoot } from 'react-dom/client'
import { RealtimeProvider, useChannel, useConnectionStatus } from '@realtime-gateway/react'

const { url, token, channel } = window.consumer

function Messages () {
  const [messages, setMessages] = useState([])
  const state = useChannel(channel, ({ offset, data }) => { setMessages((all) => [...all, { offset, data }]) })
  const status = useConnectionStatus()
  return (
    <main>
      <p id='status' data-status={status} data-channel={state.status}>{status}</p>
      <ul id='messages'>{messages.map((message) => <li key={message.offset} data-offset={message.offset}>{JSON.stringify(message.data)}</li>)}</ul>
    </main>
  )
}

createRoot(document.getElementById('root')).render(
  <RealtimeProvider options={{ url, getToken: async () => token }}>
    <Messages />
  </RealtimeProvider>
)
`
