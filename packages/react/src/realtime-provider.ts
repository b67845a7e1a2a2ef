import { createElement, useEffect, useState, type ReactElement, type ReactNode } from 'react'
import type { RealtimeClient, RealtimeClientOptions } from '@realtime-gateway/client'
import { ClientBinding } from './client-binding.js'
import { RealtimeContext } from './realtime-context.js'

export type RealtimeProviderProps = { readonly children?: ReactNode } & (
  | {
    /**
     * The provider builds and owns one `RealtimeClient` from these, read once at
     * the first render (a new object on every render changes nothing): it connects
     * after mount and closes when the last provider of it unmounts. Remount with a
     * new `key` to start over with other options.
     */
    readonly options: RealtimeClientOptions
    readonly client?: undefined
  }
  | {
    /** The app's own client: the provider never connects or closes it. */
    readonly client: RealtimeClient
    readonly options?: undefined
  }
)

/** Puts one `RealtimeClient` at the hooks' disposal (docs/react.md). */
export function RealtimeProvider (props: RealtimeProviderProps): ReactElement {
  // Built at most once per mounted provider; building it has no side effect (no
  // socket, no client even: that waits for an effect), so StrictMode's double
  // render costs nothing.
  const [owned] = useState(() => props.client === undefined ? ClientBinding.own(props.options) : undefined)
  const binding = props.client !== undefined ? ClientBinding.of(props.client) : owned
  if (binding === undefined) throw new TypeError('<RealtimeProvider> needs `options` or `client` (switching from `client` to `options` needs a new key)')

  useEffect(() => {
    binding.retain()
    return () => { binding.release() }
  }, [binding])

  return createElement(RealtimeContext.Provider, { value: binding }, props.children)
}
