/**
 * The demo page (SPEC §8, dev only): a room for two (or more) users. `?user=alice` in
 * one window and `?user=bob` in another: each gets a dev token and a subscription
 * token for the room (POST /demo/token), connects with the browser build of the SDK
 * and subscribes to the room, a presence channel. The presence list is read once per
 * (re)subscribe and then kept live from join/leave events, never refetched on a
 * change; the publish box uses `client.publish` (the `from` is the gateway's); the
 * last offset seen is kept in sessionStorage, so a reload (same user, same tab)
 * resumes with `subscribe(room, { since })` and shows what was published meanwhile,
 * once. Rendered with textContent only: message data never becomes HTML.
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
  h2 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
  .muted { color: #5b6472; }
  #status { display: inline-block; padding: .1rem .6rem; border-radius: 1rem; background: #e8ebf0; font-weight: 600; }
  #status[data-status="open"] { background: #d7f5dd; color: #145c24; }
  #status[data-status="polling"], #status[data-status="reconnecting"] { background: #fff1c2; color: #6b4e00; }
  #presence { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem; }
  #presence li { padding: .1rem .6rem; border-radius: 1rem; background: #e3ecfb; }
  form { display: flex; gap: .5rem; margin: 1rem 0; }
  input { flex: 1; padding: .4rem .6rem; font: inherit; }
  button { padding: .4rem .9rem; font: inherit; cursor: pointer; }
  #log { list-style: none; padding: 0; border-top: 1px solid #dde1e7; }
  #log li { padding: .4rem 0; border-bottom: 1px solid #dde1e7; }
  #log li.join, #log li.leave { color: #5b6472; font-style: italic; }
  #log code { color: #5b6472; margin-right: .5rem; }
</style>
</head>
<body>
<h1>realtime-gateway demo</h1>
<p class="muted">Development only. You are <strong id="user">…</strong> in <code id="room">…</code>.
  Open <a id="other" href="/demo?user=bob" target="_blank">the room as another user</a> in a second window.</p>
<p>Status: <span id="status" data-status="closed">closed</span> <span id="detail" class="muted"></span></p>
<h2>Here now</h2>
<ul id="presence"></ul>
<form id="publish">
  <input id="text" name="text" value="hello from the browser" aria-label="message text">
  <button id="send" type="submit" disabled>Publish to the room</button>
</form>
<p id="resume" class="muted"></p>
<ul id="log"></ul>
<script type="module">
import { RealtimeClient } from '/demo/realtime-gateway.js'

const $ = (id) => document.getElementById(id)
// The user: ?user=, else the one this tab was before a reload, else a fresh one.
const wanted = new URLSearchParams(location.search).get('user') ?? sessionStorage.getItem('rtgw-demo:user') ?? undefined
const mint = async () => {
  const response = await fetch('/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(wanted === undefined ? {} : { user: wanted })
  })
  const body = await response.json()
  if (!response.ok) throw new Error(body.code)
  return body
}
let session = await mint()
const room = session.room
sessionStorage.setItem('rtgw-demo:user', session.sub)
const offsetKey = 'rtgw-demo:offset:' + session.sub + ':' + room
$('user').textContent = session.sub
$('room').textContent = room
$('other').href = '/demo?user=' + (session.sub === 'bob' ? 'alice' : 'bob')

const client = new RealtimeClient({
  url: location.origin,
  getToken: async ({ forceRefresh }) => {
    if (forceRefresh) session = { ...session, token: (await mint()).token }
    return session.token
  }
})
window.demoClient = client

const line = (kind, ...parts) => {
  const item = document.createElement('li')
  item.className = kind
  item.append(...parts)
  $('log').prepend(item)
  return item
}

// Presence: one snapshot per (re)subscribe; every change after it comes from join/leave.
const present = new Set()
let changesDuringSnapshot = null
const renderPresence = () => {
  $('presence').replaceChildren(...[...present].sort().map((userId) => {
    const item = document.createElement('li')
    item.dataset.user = userId
    item.textContent = userId === session.sub ? userId + ' (you)' : userId
    return item
  }))
}
const change = (kind, userId) => {
  if (kind === 'join') present.add(userId)
  else present.delete(userId)
}
client.on('subscribed', async ({ channel }) => {
  if (channel !== room) return
  changesDuringSnapshot = []
  try {
    const snapshot = await client.presence(room)
    present.clear()
    for (const user of snapshot.users) present.add(user.userId)
    // Answered after join/leave frames that may be older than the read: applied again, in order.
    for (const [kind, userId] of changesDuringSnapshot) change(kind, userId)
  } catch (error) {
    $('detail').textContent = error.code
  } finally {
    changesDuringSnapshot = null
    renderPresence()
  }
})
for (const kind of ['join', 'leave']) {
  client.on(kind, ({ channel, userId }) => {
    if (channel !== room) return
    changesDuringSnapshot?.push([kind, userId])
    change(kind, userId)
    renderPresence()
    line(kind, userId + (kind === 'join' ? ' joined' : ' left')).dataset.user = userId
  })
}

client.on('status', (status) => {
  $('status').textContent = status
  $('status').dataset.status = status
  $('send').disabled = status !== 'open' && status !== 'polling'
})
client.on('error', (error) => { $('detail').textContent = error.code })
client.on('message', ({ channel, offset, data, from }) => {
  if (channel !== room) return
  sessionStorage.setItem(offsetKey, offset)
  const position = document.createElement('code')
  position.textContent = offset
  const author = document.createElement('strong')
  author.textContent = (from ?? 'backend') + ': '
  const item = line('message', position, author, typeof data?.text === 'string' ? data.text : JSON.stringify(data))
  item.dataset.offset = offset
  item.dataset.from = from ?? ''
})

$('publish').addEventListener('submit', async (event) => {
  event.preventDefault()
  try {
    // The publish frame (SPEC §9): allowed by the room token's publish: true; the gateway sets from.
    await client.publish(room, { text: $('text').value })
    $('detail').textContent = ''
  } catch (error) {
    $('detail').textContent = error.code
  }
})

try {
  await client.connect()
  $('detail').textContent = ''
} catch (error) {
  $('detail').textContent = error.code
}
const since = sessionStorage.getItem(offsetKey) ?? undefined
const subscribed = await client.subscribe(room, {
  // Asked again before every subscribe frame (a room token expires between reconnects).
  token: async () => (await mint()).roomToken,
  ...(since === undefined ? {} : { since })
})
sessionStorage.setItem(offsetKey, sessionStorage.getItem(offsetKey) ?? subscribed.offset)
$('resume').textContent = since === undefined
  ? 'New here: messages from now on.'
  : subscribed.recovered ? 'Resumed after ' + since + ': what was published meanwhile is below.' : 'Could not resume after ' + since + ': messages were missed.'
$('resume').dataset.resumed = since === undefined ? 'new' : String(subscribed.recovered)
</script>
</body>
</html>
`
