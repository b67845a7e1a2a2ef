import type { Config } from '../config.js'
import type { Engine, EngineLogger } from './engine.js'
import { MemoryEngine } from './memory-engine.js'
import type { PubsubProbeObserver } from './pubsub-probe.js'
import type { RedisCommandObserver } from './redis-command-runner.js'
import { RedisEngine } from './redis-engine.js'

/**
 * What an engine takes from the app that serves it: its logger, the metrics that
 * observe every Redis command, admission control's view of the event loop. They
 * exist only once the app does, so the engine is handed over as a factory that
 * buildApp calls with them (the app then owns the engine and closes it).
 */
export interface EngineServices {
  readonly logger: EngineLogger
  readonly onCommand: RedisCommandObserver
  readonly isOverloaded: () => boolean
  /** Delivery probe round trips, misses and heals (SPEC §14). */
  readonly pubsubProbe?: PubsubProbeObserver
}

export type EngineFactory = (services: EngineServices) => Engine

/** SPEC §3: the same idempotencyKey within 5 minutes gets the same offset back. */
const IDEMPOTENCY_TTL_SECONDS = 300

export type EngineConfig = Pick<Config, 'redis' | 'redisKeyPrefix' | 'redisCommandTimeoutMs' | 'historySize' | 'historyTtlSeconds' | 'inboundMaxLength' | 'eventsMaxLength' | 'pubsubProbe'>

/** The engine the configuration names: Redis on its topology (REDIS_URL, Sentinel, Cluster) or the embedded one. */
export function createEngine (config: EngineConfig, services: EngineServices): Engine {
  const relay = {
    historySize: config.historySize,
    historyTtlSeconds: config.historyTtlSeconds,
    idempotencyTtlSeconds: IDEMPOTENCY_TTL_SECONDS,
    inboundMaxLength: config.inboundMaxLength,
    eventsMaxLength: config.eventsMaxLength
  }
  if (config.redis === undefined) return new MemoryEngine({ relay })
  return new RedisEngine({
    topology: config.redis,
    keyPrefix: config.redisKeyPrefix,
    commandTimeoutMs: config.redisCommandTimeoutMs,
    logger: services.logger,
    relay,
    onCommand: services.onCommand,
    isOverloaded: services.isOverloaded,
    pubsubProbe: { ...config.pubsubProbe, observer: services.pubsubProbe }
  })
}

/** The factory buildApp takes for the engine this configuration names. */
export function configuredEngine (config: EngineConfig): EngineFactory {
  return (services) => createEngine(config, services)
}
