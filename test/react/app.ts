/**
 * The React app the browser test drives (bundled once per React version by
 * bundle.ts; not a test file itself). It mounts one scenario at a time and exposes
 * `window.harness` so the test can re-render, unmount and read what the callbacks saw.
 */
import { StrictMode, createElement, useState, version, type ReactElement } from 'react'
import { flushSync } from 'react-dom'
import { createRoot, type Root } from 'react-dom/client'
import { RealtimeProvider, useChannel, useConnectionStatus, useSend } from '@realtime-gateway/react'

export type Scenario = 'rerender' | 'strict' | 'many'

export interface MountOptions {
  readonly scenario: Scenario
  readonly url: string
  readonly token: string
  readonly channel: string
  /** `many`: how many components listen on the channel. */
  readonly listeners?: number
}

export interface Received {
  /** Which component's callback ran. */
  readonly listener: string
  /** The render whose inline callback it was. */
  readonly render: number
  readonly data: unknown
}

export interface Harness {
  readonly reactVersion: string
  readonly received: Received[]
  mount (options: MountOptions): void
  /** Re-renders the whole tree `times` times, each committed at once; returns the last render's number. */
  rerender (times: number): number
  /** `many`: how many listeners stay mounted (the provider stays). */
  setListeners (count: number): void
  send (data: unknown): Promise<void>
  /** How many different functions useSend() returned over every render so far (stable: 1). */
  distinctSends (): number
  unmount (): void
}

const received: Received[] = []
let root: Root | undefined
let bump: (() => void) | undefined
let listenersTo: ((count: number) => void) | undefined
let sendFn: ((data: unknown) => Promise<unknown>) | undefined
const sendFns = new Set<unknown>()
let lastRender = 0

function Listener (props: { readonly name: string, readonly channel: string, readonly render: number }): ReactElement {
  // A fresh inline callback on every render, capturing that render's number.
  useChannel(props.channel, (message) => { received.push({ listener: props.name, render: props.render, data: message.data }) })
  return createElement('li', null, props.name)
}

function Status (): ReactElement {
  const status = useConnectionStatus()
  sendFn = useSend()
  sendFns.add(sendFn)
  return createElement('p', { id: 'status', 'data-status': status }, status)
}

function App (props: { readonly options: MountOptions }): ReactElement {
  const [render, setRender] = useState(0)
  const [listeners, setListeners] = useState(props.options.listeners ?? 1)
  bump = () => { setRender((n) => n + 1) }
  listenersTo = setListeners
  lastRender = render
  const names = Array.from({ length: listeners }, (_, i) => `listener-${i}`)
  return createElement(
    RealtimeProvider,
    // Fresh options (and a fresh getToken) on every render: read once, never a new client.
    { options: { url: props.options.url, getToken: async () => props.options.token } },
    createElement(Status),
    createElement('ul', null, names.map((name) => createElement(Listener, { key: name, name, channel: props.options.channel, render })))
  )
}

const harness: Harness = {
  reactVersion: version,
  received,
  mount (options) {
    const container = document.getElementById('root')
    if (container === null) throw new Error('no #root')
    root = createRoot(container)
    const app = createElement(App, { options })
    root.render(options.scenario === 'strict' ? createElement(StrictMode, null, app) : app)
  },
  rerender (times) {
    for (let i = 0; i < times; i += 1) flushSync(() => { bump?.() })
    return lastRender
  },
  setListeners (count) {
    flushSync(() => { listenersTo?.(count) })
  },
  async send (data) {
    if (sendFn === undefined) throw new Error('not mounted')
    await sendFn(data)
  },
  distinctSends () {
    return sendFns.size
  },
  unmount () {
    root?.unmount()
    root = undefined
  }
}

;(globalThis as unknown as { harness: Harness }).harness = harness
