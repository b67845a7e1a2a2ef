/**
 * A load-generator process of `npm run bench -- scale` (bench/scale.ts): opens many
 * WebSocket connections to one server and holds them, optionally subscribed to one
 * channel, recording each message's delivery latency (receive time − `sentAt`, both
 * from the system clock via performance.timeOrigin, so comparable across processes on
 * one machine). Driven over IPC; exits when the parent goes.
 */
import { Agent } from 'node:http'
import WebSocket from 'ws'
import type { HolderCommand, HolderReply } from './protocol.js'
import { postTicket } from '../lib/connects.js'

const now = (): number => performance.timeOrigin + performance.now()
const sockets: WebSocket[] = []
const latencies: number[] = []
let received = 0


async function openOne (agent: Agent, command: Extract<HolderCommand, { type: 'open' }>, index: number): Promise<void> {
  const query = command.tokens.length === 0 ? '' : `?ticket=${await postTicket(agent, command.port, command.tokens[index % command.tokens.length]!, 10_000)}`
  const socket = new WebSocket(`ws://127.0.0.1:${command.port}${command.wsPath}${query}`)
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { socket.terminate(); reject(new Error('open timed out')) }, 15_000)
    const onSetup = (data: WebSocket.RawData): void => {
      const frame = JSON.parse(data.toString()) as { type?: string, code?: string }
      if (frame.type === 'session_established' && command.channel !== undefined) {
        socket.send(JSON.stringify({ type: 'subscribe', channel: command.channel, id: 1 }))
      } else if (frame.type === 'session_established' || frame.type === 'subscribed') {
        clearTimeout(timer)
        socket.off('message', onSetup)
        resolve()
      } else {
        clearTimeout(timer)
        socket.terminate()
        reject(new Error(`unexpected frame ${frame.type ?? '?'} ${frame.code ?? ''}`))
      }
    }
    socket.on('message', onSetup)
    socket.once('error', (err) => { clearTimeout(timer); reject(err) })
  })
  socket.removeAllListeners('error')
  socket.on('error', () => { /* ends in close */ })
  if (command.channel !== undefined) {
    socket.on('message', (data) => {
      const at = now()
      const frame = JSON.parse(data.toString()) as { type?: string, data?: { n?: number, sentAt?: number } }
      if (frame.type !== 'message' || typeof frame.data?.sentAt !== 'number' || (frame.data.n ?? -1) < 0) return
      received++
      latencies.push(at - frame.data.sentAt)
    })
  }
  sockets.push(socket)
}

async function open (command: Extract<HolderCommand, { type: 'open' }>): Promise<HolderReply> {
  const agent = new Agent({ keepAlive: true, maxSockets: command.concurrency })
  let next = 0
  let failed = 0
  let firstFailure: string | undefined
  const deadline = performance.now() + command.deadlineMs
  await Promise.all(Array.from({ length: command.concurrency }, async () => {
    while (next < command.count && performance.now() < deadline) {
      const index = command.offset + next++
      try {
        await openOne(agent, command, index)
      } catch (err) {
        failed++
        firstFailure ??= (err as Error).message
      }
    }
  }))
  agent.destroy()
  return { type: 'opened', open: sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length, failed, ...(firstFailure === undefined ? {} : { firstFailure }) }
}

async function closeAll (): Promise<void> {
  for (let i = 0; i < sockets.length; i += 500) {
    await Promise.all(sockets.slice(i, i + 500).map(async (socket) => {
      if (socket.readyState === WebSocket.CLOSED) return
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => { socket.terminate(); resolve() }, 3000)
        socket.once('close', () => { clearTimeout(timer); resolve() })
        socket.close()
      })
    }))
  }
  sockets.length = 0
  // The next server's figures start from zero.
  latencies.length = 0
  received = 0
}

if (process.send === undefined) throw new Error('run me from bench/scale.ts (needs an IPC channel)')
const send = process.send.bind(process)
process.on('message', (command: HolderCommand) => {
  const reply = (answer: Promise<HolderReply>): void => {
    answer.then((message) => { send(message) }, (err: unknown) => { send({ type: 'failed', message: (err as Error).message } satisfies HolderReply) })
  }
  if (command.type === 'open') reply(open(command))
  else if (command.type === 'stats') reply(Promise.resolve({ type: 'stats', received, open: sockets.filter((socket) => socket.readyState === WebSocket.OPEN).length, latencies: Buffer.from(new Float64Array(latencies).buffer).toString('base64') }))
  else if (command.type === 'close') reply(closeAll().then(() => ({ type: 'closed' }) as const))
})
process.on('disconnect', () => { process.exit(0) })
send({ type: 'ready' } satisfies HolderReply)
