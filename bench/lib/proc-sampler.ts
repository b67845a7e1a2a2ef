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

/** What the whole machine did over a window: every core, every process (ours and everyone else's). */
export interface MachineUsage {
  readonly seconds: number
  /** Busy time over wall time, in cores (2.0 = two cores busy). */
  readonly avgBusyCores: number
  /** Highest over any window of about one second. */
  readonly peakBusyCores: number
}

const CLOCK_TICKS_PER_SECOND = 100

/** Busy time of all cores from /proc/stat (user, nice, system, irq, softirq, steal), microseconds. */
export function machineBusyMicros (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  const [, ...values] = line.trim().split(/\s+/)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values.map(Number)
  return (user + nice + system + irq + softirq + steal) * (1_000_000 / CLOCK_TICKS_PER_SECOND)
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
  readonly #machine: Array<{ readonly at: number, readonly cpuMicros: number }> = []
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
    this.#machine.push({ at: performance.now(), cpuMicros: machineBusyMicros() })
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

  /** The machine's busy cores in [from, to] (performance.now() ms). */
  machine (from = Number.NEGATIVE_INFINITY, to = Number.POSITIVE_INFINITY): MachineUsage {
    const samples = this.#machine.filter((sample) => sample.at >= from && sample.at <= to)
    const first = samples[0]
    const last = samples[samples.length - 1]
    const seconds = first === undefined || last === undefined ? 0 : (last.at - first.at) / 1000
    const busy = first === undefined || last === undefined ? 0 : (last.cpuMicros - first.cpuMicros) / 1e6
    // NaN: a window too short to have two samples.
    return { seconds, avgBusyCores: seconds > 0 ? busy / seconds : Number.NaN, peakBusyCores: seconds >= 0.9 ? peakRate(samples) / 100 : Number.NaN }
  }
}

/**
 * Highest CPU % (of one core) over windows of at least one second: /proc counts in
 * 10 ms ticks, shorter windows are noise.
 */
function peakRate (samples: ReadonlyArray<{ readonly at: number, readonly cpuMicros: number }>): number {
  let peak = 0
  let start = 0
  for (let end = 1; end < samples.length; end++) {
    while (start < end - 1 && samples[end]!.at - samples[start + 1]!.at >= 1000) start++
    const span = samples[end]!.at - samples[start]!.at
    if (span < 900) continue
    peak = Math.max(peak, 100 * (samples[end]!.cpuMicros - samples[start]!.cpuMicros) / 1000 / span)
  }
  return peak
}

function summarize (entry: Watched, from: number, to: number): ProcUsage {
  const samples = entry.samples.filter((sample) => sample.at >= from && sample.at <= to)
  const first = samples[0]
  const last = samples[samples.length - 1]
  const watchedSeconds = first === undefined || last === undefined ? 0 : (last.at - first.at) / 1000
  const cpuSeconds = first === undefined || last === undefined ? 0 : (last.cpuMicros - first.cpuMicros) / 1e6
  const peakCpuPercent = peakRate(samples)
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
