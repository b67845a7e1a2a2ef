import { io as ioClient } from 'socket.io-client'

/** A Socket.IO fan-out subscriber (bench/fanout.ts): per message n, how many times it arrived. */
export interface SocketIoSubscriber {
  readonly close: () => Promise<void>
  readonly counts: Uint16Array
  closedEarly: boolean
}

const now = (): number => performance.timeOrigin + performance.now()

/**
 * Connects (WebSocket transport only, the JWT as auth payload), waits for
 * `session_established`, joins `channel` (acked `subscribed`), then counts `message`
 * events by `data.n` and records the first delivery's latency (receive − `sentAt`).
 */
export async function openSocketIoSubscriber (port: number, token: string, channel: string, messages: number, timeoutMs: number, latencies: number[]): Promise<SocketIoSubscriber> {
  const socket = ioClient(`http://127.0.0.1:${port}`, { transports: ['websocket'], auth: { token }, reconnection: false, forceNew: true, timeout: timeoutMs })
  const close = async (): Promise<void> => {
    const engine = socket.io.engine
    if (engine === undefined || engine.readyState === 'closed') { socket.disconnect(); return }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000)
      engine.once('close', () => { clearTimeout(timer); resolve() })
      socket.disconnect()
    })
  }
  const subscriber: SocketIoSubscriber = { close, counts: new Uint16Array(messages), closedEarly: false }
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('subscribe timed out')) }, timeoutMs)
      socket.once('connect_error', (err) => { clearTimeout(timer); reject(err) })
      socket.once('session_established', () => {
        socket.emit('subscribe', channel, (answer: { type?: string }) => {
          clearTimeout(timer)
          if (answer.type === 'subscribed') resolve()
          else reject(new Error(`unexpected answer ${answer.type ?? '?'}`))
        })
      })
    })
  } catch (err) {
    await close()
    throw err
  }
  socket.on('disconnect', () => { subscriber.closedEarly = true })
  socket.on('message', (payload: { data?: { n?: number, sentAt?: number } }) => {
    const received = now()
    const n = payload.data?.n
    const sentAt = payload.data?.sentAt
    if (typeof n !== 'number' || typeof sentAt !== 'number' || n < 0 || n >= messages) return // warm-up
    if (subscriber.counts[n]! === 0) latencies.push(received - sentAt)
    subscriber.counts[n]!++
  })
  return subscriber
}
