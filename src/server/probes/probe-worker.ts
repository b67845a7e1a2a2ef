/**
 * The probe thread (PROBE_PORT): `/livez` and `/readyz` on a port of their own,
 * answered by a thread whose event loop carries nothing else. On the main port a
 * probe waits behind every request of a reconnect wave, and the kubelet's 2 s
 * timeout then drops a healthy instance (issue 9). Readiness is read from shared
 * memory written by the main thread; liveness fails when the main loop has not
 * written for LIVENESS_STALL_MS, so a wedged loop is restarted instead of only
 * timing out.
 */
import { createServer, type ServerResponse } from 'node:http'
import { randomUUID } from 'node:crypto'
import { parentPort, workerData } from 'node:worker_threads'
import { ProbeState } from './probe-state.js'
import { readinessAnswer } from './readiness.js'
import { jitteredRetryAfter } from '../errors.js'

export interface ProbeWorkerData {
  readonly buffer: SharedArrayBuffer
  readonly host: string
  readonly port: number
  readonly stallMs: number
}

const data = workerData as ProbeWorkerData
const state = new ProbeState(data.buffer)

function reply (response: ServerResponse, statusCode: number, body: unknown): void {
  const text = JSON.stringify(body)
  response.writeHead(statusCode, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-request-id': randomUUID(),
    'cache-control': 'no-store'
  })
  response.end(text)
}

const server = createServer((request, response) => {
  const path = (request.url ?? '').split('?', 1)[0]
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    reply(response, 404, { error: 'NOT_FOUND', code: 'NOT_FOUND', message: 'Route not found' })
    return
  }
  const current = state.read()
  if (path === '/livez') {
    const stalledMs = Date.now() - current.lastTickMs
    if (stalledMs > data.stallMs) reply(response, 503, { status: 'stalled', stalledMs })
    else reply(response, 200, { status: 'ok' })
    return
  }
  if (path === '/readyz') {
    const answer = readinessAnswer(current)
    if (answer.statusCode === 503) response.setHeader('retry-after', String(jitteredRetryAfter(1)))
    reply(response, answer.statusCode, answer.body)
    return
  }
  reply(response, 404, { error: 'NOT_FOUND', code: 'NOT_FOUND', message: 'Route not found' })
})
// Probes come every few seconds from one kubelet: short keep-alive, nothing to drain.
server.keepAliveTimeout = 5000

server.listen({ host: data.host, port: data.port }, () => {
  const address = server.address()
  parentPort?.postMessage({ listening: typeof address === 'object' && address !== null ? address.port : data.port })
})
server.on('error', (err) => { parentPort?.postMessage({ error: err.message }) })
