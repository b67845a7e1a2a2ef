import { useCallback } from 'react'
import type { PublishOptions, PublishResult } from '@realtime-gateway/client'
import { useBinding } from './realtime-context.js'

/**
 * A stable `publish(channel, data, options?)` (SPEC §9): the same function on every
 * render of a provider, resolving to `{ channel, offset }` and rejecting as
 * `RealtimeClient.publish` does (at most once unless `idempotencyKey` is given).
 */
export function usePublish (): (channel: string, data: unknown, options?: PublishOptions) => Promise<PublishResult> {
  const binding = useBinding('usePublish')
  return useCallback(async (channel: string, data: unknown, options?: PublishOptions) => await binding.client.publish(channel, data, options), [binding])
}
