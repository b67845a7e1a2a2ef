import { readFileSync } from 'node:fs'
import { procCpuMicros } from './child.js'

/** One reading of a process: wall time (ms, performance.now()), CPU (µs), resident memory (bytes). */
export interface ProcSample {
  readonly at: number
  readonly cpuMicros: number
  readonly rssBytes: number
  /** VmHWM: the kernel's own peak of the resident set. */
  readonly hwmBytes: number
}

/** What a process used over its life (or the part of it that was watched). */
export interface ProcUsage {
  readonly label: string
  readonly pid: number
  readonly samples: number
  readonly watchedSeconds: number
  readonly cpuSeconds: number
  /** CPU over wall time, 100 = one core busy. */
  readonly avgCpuPercent: number
  /** Highest CPU over any window of about one second. */
  readonly peakCpuPercent: number
  readonly peakRssMiB: number
}

function statusKiB (status: string, field: string): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)
  return match === null ? 0 : Number(match[1])
}

/** Reads /proc/<pid>/stat and /proc/<pid>/status; undefined once the process is gone. */
export function readProc (pid: number): ProcSample | undefined {
  try {
    const cpuMicros = procCpuMicros(pid)
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return { at: performance.now(), cpuMicros, rssBytes: statusKiB(status, 'VmRSS') * 1024, hwmBytes: statusKiB(status, 'VmHWM') * 1024 }
  } catch {
    return undefined
  }
}

interface Watched {
  readonly label: string
  readonly pid: number
  readonly samples: ProcSample[]
}

/**
 * Samples labelled processes every `intervalMs` until stopped. A process that
 * exits simply stops yielding samples; a restarted one is watched again under a
 * new entry (same label, new pid).
 */
export class ProcSampler {
  readonly #intervalMs: number
  readonly #watched: Watched[] = []
  #timer: NodeJS.Timeout | undefined

  constructor (intervalMs = 500) {
    this.#intervalMs = intervalMs
  }

  watch (label: string, pid: number): void {
    const entry: Watched = { label, pid, samples: [] }
    this.#watched.push(entry)
    const sample = readProc(pid)
    if (sample !== undefined) entry.samples.push(sample)
  }

  start (): void {
    this.#timer ??= setInterval(() => { this.sampleNow() }, this.#intervalMs)
  }

  /** Takes a reading of every watched process now (also useful right before a kill). */
  sampleNow (): void {
    for (const entry of this.#watched) {
      const sample = readProc(entry.pid)
      if (sample !== undefined) entry.samples.push(sample)
    }
  }

  stop (): void {
    clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Usage of every watched process; with `from`/`to` (performance.now() ms), of that window only. */
  usage (from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): ProcUsage[] {
    return this.#watched.map((entry) => summarize(entry, from, to))
  }
}

function summarize (entry: Watched, from: number, to: number): ProcUsage {
  const samples = entry.samples.filter((sample) => sample.at >= from && sample.at <= to)
  const first = samples[0]
  const last = samples[samples.length - 1]
  const watchedSeconds = first === undefined || last === undefined ? 0 : (last.at - first.at) / 1000
  const cpuSeconds = first === undefined || last === undefined ? 0 : (last.cpuMicros - first.cpuMicros) / 1e6
  let peakCpuPercent = 0
  // Windows of at least one second: /proc counts in 10 ms ticks, shorter windows are noise.
  let start = 0
  for (let end = 1; end < samples.length; end++) {
    while (start < end - 1 && samples[end]!.at - samples[start + 1]!.at >= 1000) start++
    const span = samples[end]!.at - samples[start]!.at
    if (span < 900) continue
    peakCpuPercent = Math.max(peakCpuPercent, 100 * (samples[end]!.cpuMicros - samples[start]!.cpuMicros) / 1000 / span)
  }
  const peakRss = samples.reduce((peak, sample) => Math.max(peak, sample.rssBytes, from === Number.NEGATIVE_INFINITY ? sample.hwmBytes : 0), 0)
  return {
    label: entry.label,
    pid: entry.pid,
    samples: samples.length,
    watchedSeconds,
    cpuSeconds,
    avgCpuPercent: watchedSeconds > 0 ? 100 * cpuSeconds / watchedSeconds : 0,
    peakCpuPercent,
    peakRssMiB: peakRss / (1024 * 1024)
  }
}
