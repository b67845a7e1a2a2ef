/**
 * @realtime-gateway/react: a provider and hooks over @realtime-gateway/client
 * (SPEC §15, docs/react.md). Handlers live in refs, channels are shared and
 * ref-counted, and nothing here touches `window` or `document`: it imports and
 * renders on a server.
 */
export { RealtimeProvider, type RealtimeProviderProps } from './realtime-provider.js'
export { useRealtime } from './use-realtime.js'
export { useConnectionStatus } from './use-connection-status.js'
export { useChannel, type UseChannelOptions } from './use-channel.js'
export { useSend, type SendResult } from './use-send.js'
export { usePublish } from './use-publish.js'
export { usePresence } from './use-presence.js'
export type { ChannelState } from './channel-registry.js'
export { applyPresenceChange, type PresenceState } from './presence-registry.js'
