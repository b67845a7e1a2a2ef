import { readFileSync } from 'node:fs'
import { procCpuMicros, type ServerChild } from './child.js'

const CLOCK_TICKS_PER_SECOND = 100

/** Busy time of the whole machine (all cores) from /proc/stat, microseconds. */
function machineBusyMicros (): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
  const [, ...values] = line.trim().split(/\s+/)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = values.map(Number)
  return (user + nice + system + irq + softirq + steal) * (1_000_000 / CLOCK_TICKS_PER_SECOND)
}

interface Snapshot {
  readonly at: number
  readonly serverUser: number
  readonly serverSystem: number
  readonly serverProc: number
  readonly redis?: number
  readonly self: number
  readonly machine: number
}

/** CPU used during one phase, in microseconds, and its wall time in seconds. */
export interface Usage {
  readonly seconds: number
  /** The server child's process.cpuUsage() (all its threads). */
  readonly serverUser: number
  readonly serverSystem: number
  readonly server: number
  /** The same from /proc/<pid>/stat (10 ms resolution), a cross-check. */
  readonly serverProc: number
  readonly redis?: number
  /** This process: the load generator (autocannon or the ws clients). */
  readonly loadGenerator: number
  /** Everything else on the machine (other sessions, the OS): noise in the figures. */
  readonly background: number
}

/** Reads the server, Redis, the load generator and the machine before and after a phase. */
export class Meter {
  readonly #server: ServerChild
  readonly #redisPid: number | undefined

  constructor (server: ServerChild, redisPid?: number) {
    this.#server = server
    this.#redisPid = redisPid
  }

  async snapshot (): Promise<Snapshot> {
    const server = await this.#server.cpu()
    const self = process.cpuUsage()
    return {
      at: performance.now(),
      serverUser: server.user,
      serverSystem: server.system,
      serverProc: server.procMicros,
      ...(this.#redisPid === undefined ? {} : { redis: procCpuMicros(this.#redisPid) }),
      self: self.user + self.system,
      machine: machineBusyMicros()
    }
  }

  static usage (before: Snapshot, after: Snapshot): Usage {
    const serverUser = after.serverUser - before.serverUser
    const serverSystem = after.serverSystem - before.serverSystem
    const server = serverUser + serverSystem
    const redis = before.redis === undefined || after.redis === undefined ? undefined : after.redis - before.redis
    const loadGenerator = after.self - before.self
    const machine = after.machine - before.machine
    return {
      seconds: (after.at - before.at) / 1000,
      serverUser,
      serverSystem,
      server,
      serverProc: after.serverProc - before.serverProc,
      ...(redis === undefined ? {} : { redis }),
      loadGenerator,
      background: Math.max(0, machine - server - (redis ?? 0) - loadGenerator)
    }
  }
}
