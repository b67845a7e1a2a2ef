import { createContext, useContext } from 'react'
import type { ClientBinding } from './client-binding.js'

export const RealtimeContext = createContext<ClientBinding | null>(null)

/** The nearest provider's binding; a hook outside any provider is a bug, said at once. */
export function useBinding (hook: string): ClientBinding {
  const binding = useContext(RealtimeContext)
  if (binding === null) throw new Error(`${hook}() must be called inside <RealtimeProvider>`)
  return binding
}
