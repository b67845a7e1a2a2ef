import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, run, waitFor } from './redis-server.js'
import { TcpProxy } from './tcp-proxy.js'

export { waitFor }

export interface RedisSentinelOptions {
  /** The name Sentinel monitors the master under. */
  readonly name?: string
  /** `requirepass` (and `masterauth`) on the master and the replica. */
  readonly password?: string
  /** `requirepass` on the Sentinels themselves. */
  readonly sentinelPassword?: string
  /**
   * Every data node behind a TcpProxy of its own, and announced as the proxy's port
   * (`replica-announce-port`, the Sentinels' monitor address), so everyone reaches the
   * nodes through the proxies and a test can retarget or deafen one (SPEC §14 tests).
   */
  readonly proxied?: boolean
}


/**
 * A master, one replica and three Sentinels (quorum 2), owned by one test file:
 * every process on a free port, the Sentinels' config files in a temp directory,
 * failure detection and failover timeouts short. Stopped by pid.
 */
export class RedisSentinel {
  readonly name: string
  readonly password: string | undefined
  readonly sentinelPassword: string | undefined
  /** Data nodes by port; the first one starts as the master. */
  readonly dataPorts: readonly number[]
  readonly sentinelPorts: readonly number[]
  /** Data node port → its proxy (only with `proxied`). */
  readonly proxies = new Map<number, TcpProxy>()
  readonly #dir: string
  readonly #processes = new Map<number, ChildProcess>()

  private constructor (options: RedisSentinelOptions, dataPorts: number[], sentinelPorts: number[]) {
    this.name = options.name ?? 'gateway-master'
    this.password = options.password
    this.sentinelPassword = options.sentinelPassword
    this.dataPorts = dataPorts
    this.sentinelPorts = sentinelPorts
    this.#dir = mkdtempSync(join(tmpdir(), 'rtgw-sentinel-'))
  }

  static async start (options: RedisSentinelOptions = {}): Promise<RedisSentinel> {
    const ports = new Set<number>()
    while (ports.size < 5) ports.add(await freePort())
    const [master, replica, ...sentinels] = [...ports] as [number, number, ...number[]]
    const setup = new RedisSentinel(options, [master, replica], sentinels)
    try {
      if (options.proxied === true) for (const port of [master, replica]) setup.proxies.set(port, await TcpProxy.start(port))
      await setup.#startData(master)
      await setup.#startData(replica, master)
      await waitFor(async () => (await setup.#data(replica, 'info', 'replication')).includes('master_link_status:up'), 'replica in sync')
      for (const port of sentinels) await setup.#startSentinel(port, setup.announced(master))
      // Each Sentinel must know the replica and the other two before a failover can be voted.
      for (const port of sentinels) {
        await waitFor(async () => (await setup.#sentinel(port, 'sentinel', 'ckquorum', setup.name)).startsWith('OK 3 usable'), `sentinel ${port} quorum`)
        await waitFor(async () => (await setup.#sentinel(port, 'sentinel', 'replicas', setup.name)).includes(String(setup.announced(replica))), `sentinel ${port} sees the replica`)
      }
    } catch (err) {
      await setup.stop()
      throw err
    }
    return setup
  }

  /** `host:port,...` as REDIS_SENTINELS takes it. */
  get sentinelsEnv (): string {
    return this.sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',')
  }

  /** The port a data node is known by: its proxy's with `proxied`, else its own. */
  announced (port: number): number {
    return this.proxies.get(port)?.port ?? port
  }

  /** The data node an announced port (masterPort()) stands for. */
  dataPortOf (announced: number): number {
    return [...this.proxies].find(([, proxy]) => proxy.port === announced)?.[0] ?? announced
  }

  pidOf (port: number): number | undefined {
    return this.#processes.get(port)?.pid
  }

  /** The master's port as the first Sentinel reports it (with `proxied`, its proxy's: see dataPortOf). */
  async masterPort (): Promise<number> {
    const reply = (await this.#sentinel(this.sentinelPorts[0]!, 'sentinel', 'get-master-addr-by-name', this.name)).trim().split('\n')
    return Number(reply[1])
  }

  /** `role:master` / `role:slave` from the node itself. */
  async roleOf (port: number): Promise<string> {
    return /role:(\w+)/.exec(await this.#data(port, 'info', 'replication'))?.[1] ?? 'unknown'
  }

  /** A command to the first Sentinel (e.g. `sentinel failover <name>`); raw output. */
  async sentinelCommand (...args: string[]): Promise<string> {
    return await this.#sentinel(this.sentinelPorts[0]!, ...args)
  }

  /** SIGKILL on one process (no goodbye to clients or Sentinels). */
  async kill (port: number): Promise<void> {
    const child = this.#processes.get(port)
    this.#processes.delete(port)
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }

  async stop (): Promise<void> {
    for (const port of [...this.#processes.keys()]) await this.kill(port)
    for (const proxy of this.proxies.values()) await proxy.close()
    rmSync(this.#dir, { recursive: true, force: true })
  }

  async #startData (port: number, masterPort?: number): Promise<void> {
    const auth = this.password === undefined ? [] : ['--requirepass', this.password, '--masterauth', this.password]
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', this.#dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
      ...auth, ...(masterPort === undefined ? [] : ['--replicaof', '127.0.0.1', String(this.announced(masterPort))]),
      ...(this.proxies.has(port) ? ['--replica-announce-ip', '127.0.0.1', '--replica-announce-port', String(this.announced(port))] : [])
    ], { stdio: 'ignore' })
    this.#processes.set(port, child)
    await waitFor(async () => (await this.#data(port, 'ping')).trim() === 'PONG', `redis-server ${port}`)
  }

  async #startSentinel (port: number, masterPort: number): Promise<void> {
    const file = join(this.#dir, `sentinel-${port}.conf`)
    const lines = [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${this.#dir}`,
      'sentinel resolve-hostnames no',
      `sentinel monitor ${this.name} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${this.name} 1000`,
      `sentinel failover-timeout ${this.name} 3000`,
      `sentinel parallel-syncs ${this.name} 1`,
      ...(this.password === undefined ? [] : [`sentinel auth-pass ${this.name} ${this.password}`]),
      // Sentinels authenticate to each other with sentinel-pass when they require a password.
      ...(this.sentinelPassword === undefined ? [] : [`requirepass ${this.sentinelPassword}`, `sentinel sentinel-pass ${this.sentinelPassword}`])
    ]
    // Sentinel rewrites its config file as it learns the topology: it must be its own, writable.
    writeFileSync(file, `${lines.join('\n')}\n`)
    const child = spawn('redis-server', [file, '--sentinel', '--loglevel', 'warning'], { stdio: 'ignore' })
    this.#processes.set(port, child)
    await waitFor(async () => (await this.#sentinel(port, 'ping')).trim() === 'PONG', `sentinel ${port}`)
  }

  async #data (port: number, ...args: string[]): Promise<string> {
    return await run('redis-cli', ['-p', String(port), ...(this.password === undefined ? [] : ['-a', this.password, '--no-auth-warning']), ...args])
  }

  async #sentinel (port: number, ...args: string[]): Promise<string> {
    return await run('redis-cli', ['-p', String(port), ...(this.sentinelPassword === undefined ? [] : ['-a', this.sentinelPassword, '--no-auth-warning']), ...args])
  }
}
