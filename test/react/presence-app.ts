/**
 * The React app of the presence browser test (bundled per React version by bundle.ts;
 * not a test file itself): one provider, a `usePresence` view of one channel and a
 * `usePublish` button, exposed on `window.harness`.
 */
import { createElement, useState, version, type ReactElement } from 'react'
import { flushSync } from 'react-dom'
import { createRoot, type Root } from 'react-dom/client'
import { RealtimeProvider, usePresence, usePublish, type PresenceState } from '@realtime-gateway/react'

export interface PresenceHarness {
  readonly reactVersion: string
  /** Every state `usePresence` rendered, in order (a new entry only when it changed). */
  readonly states: PresenceState[]
  mount (url: string, channel: string): void
  rerender (times: number): void
  publish (channel: string, data: unknown): Promise<unknown>
  /** How many different functions usePublish() returned over every render (stable: 1). */
  distinctPublishes (): number
  unmount (): void
}

const states: PresenceState[] = []
const publishes = new Set<unknown>()
let publishFn: ((channel: string, data: unknown) => Promise<unknown>) | undefined
let bump: (() => void) | undefined
let root: Root | undefined

function Room (props: { readonly channel: string }): ReactElement {
  const presence = usePresence(props.channel)
  publishFn = usePublish()
  publishes.add(publishFn)
  if (states.at(-1) !== presence) states.push(presence)
  const users = presence.status === 'ready' ? presence.presence.users.map((user) => user.userId) : []
  return createElement('ul', { id: 'room', 'data-status': presence.status }, users.map((user) => createElement('li', { key: user }, user)))
}

function App (props: { readonly url: string, readonly channel: string }): ReactElement {
  const [, setRender] = useState(0)
  bump = () => { setRender((n) => n + 1) }
  return createElement(
    RealtimeProvider,
    { options: { url: props.url, getToken: async () => 'jwt', backoff: { initialMs: 50, maxMs: 100 } } },
    createElement(Room, { channel: props.channel })
  )
}

const harness: PresenceHarness = {
  reactVersion: version,
  states,
  mount (url, channel) {
    const container = document.getElementById('root')
    if (container === null) throw new Error('no #root')
    root = createRoot(container)
    root.render(createElement(App, { url, channel }))
  },
  rerender (times) {
    for (let i = 0; i < times; i += 1) flushSync(() => { bump?.() })
  },
  async publish (channel, data) {
    if (publishFn === undefined) throw new Error('not mounted')
    return await publishFn(channel, data)
  },
  distinctPublishes () {
    return publishes.size
  },
  unmount () {
    root?.unmount()
    root = undefined
  }
}

;(globalThis as unknown as { harness: PresenceHarness }).harness = harness
