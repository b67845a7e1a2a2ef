/**
 * A page init script (playwright `addInitScript`), shared by the React browser tests:
 * every WebSocket the page builds is counted, and what it sends, receives and closes
 * is logged in order on `window.__ws`.
 */
export const countSockets = `
  window.__ws = { constructed: 0, events: [] }
  const Native = window.WebSocket
  window.WebSocket = class CountingWebSocket extends Native {
    constructor (url, protocols) {
      super(url, protocols)
      const socket = ++window.__ws.constructed
      this.__socket = socket
      this.addEventListener('message', (event) => { window.__ws.events.push({ socket, kind: 'in', frame: JSON.parse(event.data) }) })
      this.addEventListener('close', (event) => { window.__ws.events.push({ socket, kind: 'closed', code: event.code }) })
    }
    send (data) {
      window.__ws.events.push({ socket: this.__socket, kind: 'out', frame: JSON.parse(data) })
      super.send(data)
    }
    close (code, reason) {
      window.__ws.events.push({ socket: this.__socket, kind: 'close', code })
      super.close(code, reason)
    }
  }
`
