/**
 * A chat room on `chat:lobby` with @realtime-gateway/react. The page's own server
 * (server.ts) plays the app's backend: it mints each visitor a token that may join
 * the room, and publishes what they say. The socket goes straight to the gateway,
 * on another origin.
 */
import { useEffect, useState } from 'react'
import { createRoot } from 'react-dom/client'
import { RealtimeProvider, useChannel, useConnectionStatus } from '@realtime-gateway/react'

/** One visitor per tab: a name for the room and a session id, kept across reloads of the tab. */
function visitor () {
  const saved = sessionStorage.getItem('react-chat')
  if (saved !== null) return JSON.parse(saved)
  const fresh = { user: `guest-${Math.random().toString(36).slice(2, 7)}`, session: crypto.randomUUID() }
  sessionStorage.setItem('react-chat', JSON.stringify(fresh))
  return fresh
}

/** The last token: the client's, and what /api/say is called with. */
let token = ''

/** The token the client asks for on every (re)connect; the backend decides what it may join. */
async function fetchToken (me) {
  const response = await fetch('./api/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(me)
  })
  if (!response.ok) throw new Error(`token: HTTP ${response.status}`)
  ;({ token } = await response.json())
  return token
}

function Room ({ room, me }) {
  const status = useConnectionStatus()
  const [lines, setLines] = useState([])
  const [text, setText] = useState('')
  const [problem, setProblem] = useState('')
  // An inline handler: it never resubscribes, and it is always this render's.
  const channel = useChannel(room, ({ offset, data }) => {
    setLines((all) => [...all, { offset, user: data.user, text: data.text }])
  })

  async function say (event) {
    event.preventDefault()
    if (text.trim() === '') return
    // The backend publishes it to the room (the gateway's POST /v1/publish); it comes back
    // to every tab, this one too, through useChannel.
    const response = await fetch('./api/say', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ text })
    })
    if (response.ok) {
      setText('')
      setProblem('')
    } else {
      setProblem(`not sent: HTTP ${response.status}`)
    }
  }

  return (
    <main>
      <h1>#{room}</h1>
      <p>
        You are <b id='user'>{me.user}</b>. Socket: <span id='status' data-status={status}>{status}</span>{' '}
        Room: <span id='channel' data-status={channel.status}>{channel.status === 'failed' ? channel.error.code : channel.status}</span>
      </p>
      <ul id='messages'>
        {lines.map((line) => <li key={line.offset}><span className='user'>{line.user}</span><span className='text'>{line.text}</span></li>)}
      </ul>
      <form onSubmit={say}>
        <input id='text' value={text} onChange={(event) => { setText(event.target.value) }} placeholder='Say something' autoComplete='off' />
        <button id='send' disabled={channel.status !== 'subscribed'}>Send</button>
      </form>
      {problem === '' ? null : <p id='problem'>{problem}</p>}
    </main>
  )
}

function App () {
  const [config, setConfig] = useState(undefined)
  const [me] = useState(visitor)
  useEffect(() => {
    fetch('./config.json').then(async (response) => { setConfig(await response.json()) }, (error) => { setConfig({ error: String(error) }) })
  }, [])
  if (config === undefined) return <p>Loading…</p>
  if (config.error !== undefined) return <p>{config.error}</p>
  return (
    // Read once: a new options object on each render changes nothing.
    <RealtimeProvider options={{ url: config.gatewayUrl, getToken: async () => await fetchToken(me) }}>
      <Room room={config.room} me={me} />
    </RealtimeProvider>
  )
}

createRoot(document.getElementById('root')).render(<App />)
