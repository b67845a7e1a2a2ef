/**
 * Run by ssr.test.ts in a plain Node process (no window, no document, no WebSocket
 * on Node 20): importing @realtime-gateway/react must not throw, and a tree using
 * every hook must render to a string without building a client. Prints one JSON line.
 */
import { createElement, type ReactElement } from 'react'
import { renderToString } from 'react-dom/server'
import { version } from 'react'
import * as bindings from '@realtime-gateway/react'

const { RealtimeProvider, useChannel, useConnectionStatus, usePresence, usePublish, useSend } = bindings

function Feed (): ReactElement {
  const status = useConnectionStatus()
  const channel = useChannel('user:ssr', () => {})
  const send = useSend()
  const publish = usePublish()
  const presence = usePresence('room:ssr')
  return createElement('p', { 'data-send': typeof send, 'data-publish': typeof publish }, `${status}/${channel.status}/${presence.status}`)
}

const html = renderToString(createElement(RealtimeProvider, {
  options: { url: 'http://127.0.0.1:1', getToken: async () => 'never-asked' }
}, createElement(Feed)))

process.stdout.write(JSON.stringify({
  reactVersion: version,
  exports: Object.keys(bindings).sort(),
  html,
  globals: { window: typeof (globalThis as { window?: unknown }).window, document: typeof (globalThis as { document?: unknown }).document }
}) + '\n')
