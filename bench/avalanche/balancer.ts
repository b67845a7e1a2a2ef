/**
 * The avalanche benchmark's ingress: a round-robin TCP balancer on 127.0.0.1, run
 * as a child of bench/avalanche.ts (its own event loop, so relaying every client's
 * bytes does not delay the orchestrator's clocks). Every client connects through
 * it, so the gateways see one peer IP, as behind a real ingress.
 *
 * Routing: the next backend in turn among those the parent reports ready (it polls
 * /readyz, like an endpoint controller dropping an unready pod); a connect that is
 * refused or reset goes to the next backend; with no ready backend, every backend is
 * tried. Bytes are piped both ways with backpressure; either side closing closes the
 * other (a killed gateway's sockets reach the clients as a TCP close: 1006).
 */
import { createConnection, createServer, type Socket } from 'node:net'
import type { Backend, BackendStats, FromBalancer, ToBalancer } from './protocol.js'

interface BackendState {
  name: string
  readonly port: number
  ready: boolean
  active: number
  accepted: number
  failedConnects: number
}

if (process.send === undefined) throw new Error('run by bench/avalanche.ts (needs an IPC channel)')
const send = (message: FromBalancer): void => { process.send?.(message) }

let backends: BackendState[] = []
let turn = 0
/** Client connections no backend would take. */
let refused = 0

function candidates (): BackendState[] {
  const ready = backends.filter((backend) => backend.ready)
  const pool = ready.length > 0 ? ready : backends
  if (pool.length === 0) return []
  const start = turn++ % pool.length
  const ordered = [...pool.slice(start), ...pool.slice(0, start)]
  // Unready backends last, as a fallback when every ready one refuses.
  return ready.length > 0 ? [...ordered, ...backends.filter((backend) => !backend.ready)] : ordered
}

function splice (client: Socket, upstream: Socket, backend: BackendState): void {
  backend.active += 1
  backend.accepted += 1
  let closed = false
  const closeBoth = (): void => {
    if (closed) return
    closed = true
    backend.active -= 1
    client.destroy()
    upstream.destroy()
  }
  upstream.setNoDelay(true)
  client.pipe(upstream)
  upstream.pipe(client)
  // A FIN is passed on by pipe (end()); an error or a close ends the pair.
  client.on('error', closeBoth)
  upstream.on('error', closeBoth)
  client.on('close', closeBoth)
  upstream.on('close', closeBoth)
  client.resume()
}

function route (client: Socket): void {
  client.pause()
  client.setNoDelay(true)
  const order = candidates()
  let clientGone = false
  client.once('close', () => { clientGone = true })
  client.on('error', () => { clientGone = true })
  const tryNext = (index: number): void => {
    const backend = order[index]
    if (backend === undefined || clientGone) {
      if (!clientGone) refused += 1
      client.destroy()
      return
    }
    const upstream = createConnection({ host: '127.0.0.1', port: backend.port })
    const onError = (): void => {
      backend.failedConnects += 1
      upstream.destroy()
      tryNext(index + 1)
    }
    upstream.once('error', onError)
    upstream.once('connect', () => {
      upstream.off('error', onError)
      if (clientGone) { upstream.destroy(); return }
      splice(client, upstream, backend)
    })
  }
  tryNext(0)
}

const server = createServer({ noDelay: true }, route)
server.on('error', (err) => { process.stderr.write(`balancer: ${err.message}\n`); process.exit(1) })
server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('balancer: not listening')
  send({ type: 'listening', port: address.port })
})

process.on('message', (message: ToBalancer) => {
  if (message.type === 'backends') {
    // Keep the counters of backends that stay.
    backends = message.backends.map((next: Backend) => {
      const known = backends.find((backend) => backend.port === next.port)
      if (known === undefined) return { ...next, active: 0, accepted: 0, failedConnects: 0 }
      known.ready = next.ready
      known.name = next.name
      return known
    })
  } else if (message.type === 'stats') {
    const stats: BackendStats[] = backends.map(({ name, port, active, accepted, failedConnects }) => ({ name, port, active, accepted, failedConnects }))
    send({ type: 'stats', id: message.id, backends: stats, refused })
  }
})
// The parent is gone (or asked us to stop by disconnecting): do not linger.
process.on('disconnect', () => { process.exit(0) })
