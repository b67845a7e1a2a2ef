import type { PhaseResult } from './load.js'
import { fmt, table } from './setup.js'

/** One table row per phase: rate, latency, CPU per operation and who else used the CPU. */
export function phaseTable (title: string, unit: string, phases: readonly PhaseResult[]): string {
  return table([
    title, `${unit}s`, `${unit}s/s`, 'p50 ms', 'p99 ms',
    `server CPU µs/${unit}`, 'user', 'sys', '(/proc)', 'server cores',
    `redis CPU µs/${unit}`, 'load-gen cores', 'background cores', 'failures'
  ], phases.map((phase) => [
    phase.name,
    String(phase.operations),
    fmt(phase.perSecond),
    fmt(phase.p50Ms, 1),
    fmt(phase.p99Ms, 1),
    fmt(phase.perOperation.server, 1),
    fmt(phase.perOperation.serverUser, 1),
    fmt(phase.perOperation.serverSystem, 1),
    fmt(phase.perOperation.serverProc, 0),
    fmt(phase.serverCores, 2),
    fmt(phase.perOperation.redis, 1),
    fmt(phase.usage.loadGenerator / 1e6 / phase.usage.seconds, 2),
    fmt(phase.backgroundCores, 2),
    String(phase.failures)
  ]))
}
