/**
 * The demo page (SPEC §8, dev only): gets a dev token, connects with the browser
 * build of the SDK, subscribes to `user:<sub>`, shows status and messages, and
 * publishes to itself through POST /demo/publish (the token has no publish scope).
 * Rendered with textContent only: message data never becomes HTML.
 */
export const demoPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>realtime-gateway demo</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1d2430; }
  h1 { font-size: 1.4rem; margin-bottom: .25rem; }
  .muted { color: #5b6472; }
  #status { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; background: #e8ebf0; font-weight: 600; }
  #status[data-status="open"] { background: #d7f5dd; color: #145c24; }
  #status[data-status="polling"], #status[data-status="reconnecting"] { background: #fff1c2; color: #6b4e00; }
  form { display: flex; gap: .5rem; margin: 1rem 0; }
  input { flex: 1; padding: .4rem .6rem; font: inherit; }
  button { padding: .4rem .9rem; font: inherit; cursor: pointer; }
  #messages { list-style: none; padding: 0; border-top: 1px solid #dde1e7; }
  #messages li { padding: .4rem 0; border-bottom: 1px solid #dde1e7; }
  #messages code { color: #5b6472; margin-right: .5rem; }
</style>
</head>
<body>
<h1>realtime-gateway demo</h1>
<p class="muted">Development only. Signed in as <strong id="user">…</strong> on channel <code id="channel">…</code></p>
<p>Status: <span id="status" data-status="closed">closed</span> <span id="detail" class="muted"></span></p>
<form id="publish">
  <input id="text" name="text" value="hello from the browser" aria-label="message text">
  <button id="send" type="submit" disabled>Publish to myself</button>
</form>
<ul id="messages"></ul>
<script type="module">
import { RealtimeClient } from '/demo/realtime-gateway.js'

const $ = (id) => document.getElementById(id)
const mint = async () => (await fetch('/demo/token', { method: 'POST' })).json()
let session = await mint()
$('user').textContent = session.sub
$('channel').textContent = session.channel

const client = new RealtimeClient({
  url: location.origin,
  getToken: async ({ forceRefresh }) => {
    if (forceRefresh) session = { ...session, token: (await mint()).token }
    return session.token
  }
})
window.demoClient = client

client.on('status', (status) => {
  $('status').textContent = status
  $('status').dataset.status = status
  $('send').disabled = status !== 'open' && status !== 'polling'
})
client.on('error', (error) => { $('detail').textContent = error.code })
client.on('message', ({ offset, data }) => {
  const item = document.createElement('li')
  const position = document.createElement('code')
  position.textContent = offset
  item.append(position, typeof data?.text === 'string' ? data.text : JSON.stringify(data))
  $('messages').prepend(item)
})

$('publish').addEventListener('submit', async (event) => {
  event.preventDefault()
  // The demo token has no publish scope: /demo/publish sends to this user's own channel only.
  const response = await fetch('/demo/publish', {
    method: 'POST',
    headers: { authorization: 'Bearer ' + session.token, 'content-type': 'application/json' },
    body: JSON.stringify({ data: { text: $('text').value } })
  })
  if (!response.ok) $('detail').textContent = (await response.json()).code
})

try {
  await client.connect()
  $('detail').textContent = ''
} catch (error) {
  $('detail').textContent = error.code
}
await client.subscribe(session.channel)
</script>
</body>
</html>
`
