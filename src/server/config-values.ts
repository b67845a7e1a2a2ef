/** Values of the environment that need more than the schema (config.ts): origin lists, TRUST_PROXY, the delivery probe. */
import { Type } from 'typebox'

/** A configuration error: its message is the one line printed at boot. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** A comma list of exact origins, or `*` (null: any origin). */
export function originsOf (variable: string, value: string): ReadonlySet<string> | null {
  const origins = value.split(',').map((origin) => origin.trim()).filter(Boolean)
  for (const origin of origins) {
    if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
      throw new ConfigError(`Invalid configuration: ${variable} entry "${origin}" must be * or scheme://host[:port] with no path`)
    }
  }
  return origins.includes('*') ? null : new Set(origins)
}

const IPV4_CIDR = /^(\d{1,3}\.){3}\d{1,3}(\/\d{1,2})?$/
const IPV6_CIDR = /^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(\/\d{1,3})?$/

/**
 * TRUST_PROXY (SPEC §2, §13) in the forms Fastify's `trustProxy` takes: `true` (every
 * hop: only when the gateway is reachable through the proxy alone), a hop count, or
 * the proxies' addresses/CIDRs. Unset or `false`: the TCP peer is the client.
 */
export function trustProxyOf (value: string | undefined): boolean | number | readonly string[] {
  if (value === undefined || value === 'false') return false
  if (value === 'true') return true
  if (/^\d+$/.test(value)) {
    const hops = Number(value)
    if (hops < 1 || hops > 32) throw new ConfigError('Invalid configuration: TRUST_PROXY hop count must be between 1 and 32')
    return hops
  }
  const entries = value.split(',').map((entry) => entry.trim()).filter(Boolean)
  for (const entry of entries) {
    if (!IPV4_CIDR.test(entry) && !IPV6_CIDR.test(entry)) {
      throw new ConfigError(`Invalid configuration: TRUST_PROXY entry "${entry}" must be an IP address or CIDR (or use true, false or a hop count)`)
    }
  }
  if (entries.length === 0) throw new ConfigError('Invalid configuration: TRUST_PROXY must be true, false, a hop count or a comma list of IPs/CIDRs')
  return Object.freeze(entries)
}


/** SPEC §2, §14: the delivery probe's variables, spread into config.ts's schema. */
export const PubsubProbeEnv = {
  PUBSUB_PROBE_INTERVAL_MS: Type.Integer({ minimum: 50, maximum: 600000, default: 5000 }),
  PUBSUB_PROBE_TIMEOUT_MS: Type.Integer({ minimum: 10, maximum: 600000, default: 2000 })
}

export interface PubsubProbeConfig {
  readonly intervalMs: number
  readonly timeoutMs: number
}

/**
 * A probe must be judged before the next one is due: a timeout above the interval would
 * keep one probe per shard in flight forever and stretch detection past 2 × interval + timeout.
 */
export function pubsubProbeOf (parsed: { PUBSUB_PROBE_INTERVAL_MS: number, PUBSUB_PROBE_TIMEOUT_MS: number }): PubsubProbeConfig {
  if (parsed.PUBSUB_PROBE_TIMEOUT_MS > parsed.PUBSUB_PROBE_INTERVAL_MS) {
    throw new ConfigError('Invalid configuration: PUBSUB_PROBE_TIMEOUT_MS must not exceed PUBSUB_PROBE_INTERVAL_MS')
  }
  return Object.freeze({ intervalMs: parsed.PUBSUB_PROBE_INTERVAL_MS, timeoutMs: parsed.PUBSUB_PROBE_TIMEOUT_MS })
}
