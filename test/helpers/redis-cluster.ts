import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, run, waitFor } from './redis-server.js'

export interface RedisClusterOptions {
  /** Masters (no replicas); 3 is the smallest cluster `redis-cli --cluster create` accepts. */
  readonly masters?: number
  /** `requirepass` on every node (the `default` user). */
  readonly password?: string
  /** TLS only: clients, the cluster bus and what CLUSTER SLOTS announces all use TLS (PEM file paths). */
  readonly tls?: { readonly cert: string, readonly key: string, readonly ca: string }
}


/**
 * A Redis Cluster owned by one test file: N `redis-server --cluster-enabled yes`
 * processes on free ports (data and cluster-bus ports both chosen free), joined with
 * `redis-cli --cluster create`, all masters. Stopped by pid.
 */
export class RedisCluster {
  readonly ports: readonly number[]
  readonly password: string | undefined
  readonly tls: RedisClusterOptions['tls']
  readonly #dir: string
  readonly #processes = new Map<number, ChildProcess>()

  private constructor (ports: number[], options: RedisClusterOptions) {
    this.ports = ports
    this.password = options.password
    this.tls = options.tls
    this.#dir = mkdtempSync(join(tmpdir(), 'rtgw-cluster-'))
  }

  static async start (options: RedisClusterOptions = {}): Promise<RedisCluster> {
    const count = options.masters ?? 3
    const ports: number[] = []
    const busPorts: number[] = []
    while (ports.length < count) {
      const port = await freePort()
      const bus = await freePort()
      if (port === bus || ports.includes(port) || ports.includes(bus) || busPorts.includes(port) || busPorts.includes(bus)) continue
      ports.push(port)
      busPorts.push(bus)
    }
    const cluster = new RedisCluster(ports, options)
    try {
      ports.forEach((port, index) => { cluster.#spawn(port, busPorts[index]!) })
      for (const port of ports) await waitFor(async () => await cluster.#ping(port), `cluster node ${port} answering`)
      await run('redis-cli', [
        ...cluster.#cliOptions(),
        '--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '0', '--cluster-yes'
      ])
      for (const port of ports) {
        await waitFor(async () => (await cluster.#command(port, 'cluster', 'info')).includes('cluster_state:ok'), `cluster_state:ok on ${port}`)
      }
    } catch (err) {
      await cluster.stop()
      throw err
    }
    return cluster
  }

  /** `host:port,...` as REDIS_CLUSTER_NODES takes it (every node, though one would do). */
  get nodesEnv (): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',')
  }

  get pids (): number[] {
    return [...this.#processes.values()].map((child) => child.pid!).filter(Boolean)
  }

  /** A plain client to one node (not cluster-aware), for inspection. */
  nodeClient (port: number): Redis {
    return new Redis({
      host: '127.0.0.1',
      port,
      lazyConnect: true,
      ...(this.password === undefined ? {} : { password: this.password }),
      ...(this.tls === undefined ? {} : { tls: { ca: readFileSync(this.tls.ca) } })
    })
  }

  /** Every key matching `pattern` on every node, sorted. */
  async keys (pattern: string): Promise<string[]> {
    const all: string[] = []
    for (const port of this.ports) all.push(...(await this.#command(port, 'keys', pattern)).split('\n').filter(Boolean))
    return all.sort()
  }

  /** CLUSTER KEYSLOT: the hash slot of a key or shard channel name. */
  async slotOf (key: string): Promise<number> {
    return Number((await this.#command(this.ports[0]!, 'cluster', 'keyslot', key)).trim())
  }

  /** Runs one command on one node through redis-cli; raw output, one line per reply element. */
  async onNode (port: number, ...args: string[]): Promise<string[]> {
    return (await this.#command(port, ...args)).split('\n').filter(Boolean)
  }

  /** The node (port) serving the slot of `key`. */
  async nodeOf (key: string): Promise<number> {
    const client = this.nodeClient(this.ports[0]!)
    try {
      await client.connect()
      const slot = await client.cluster('KEYSLOT', key)
      const range = (await client.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to)
      const port = range?.[2]?.[1]
      if (port === undefined) throw new Error(`slot ${slot} is not served`)
      return port
    } finally {
      client.disconnect()
    }
  }

  async stop (): Promise<void> {
    for (const [port, child] of this.#processes) {
      this.#processes.delete(port)
      if (child.exitCode !== null || child.signalCode !== null) continue
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
    rmSync(this.#dir, { recursive: true, force: true })
  }

  #spawn (port: number, busPort: number): void {
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-port', String(busPort),
      '--cluster-config-file', join(this.#dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
      '--dir', this.#dir, '--save', '', '--appendonly', 'no', '--loglevel', 'warning',
      ...(this.password === undefined ? [] : ['--requirepass', this.password, '--masterauth', this.password]),
      ...(this.tls === undefined
        ? []
        : ['--port', '0', '--tls-port', String(port), '--tls-cluster', 'yes', '--tls-replication', 'yes', '--tls-auth-clients', 'no',
            '--tls-cert-file', this.tls.cert, '--tls-key-file', this.tls.key, '--tls-ca-cert-file', this.tls.ca])
    ], { stdio: 'ignore' })
    this.#processes.set(port, child)
  }

  async #ping (port: number): Promise<boolean> {
    return (await this.#command(port, 'ping')).trim() === 'PONG'
  }

  /** One command through redis-cli (raw output). */
  async #command (port: number, ...args: string[]): Promise<string> {
    return await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...this.#cliOptions(), ...args])
  }

  #cliOptions (): string[] {
    return [
      ...(this.password === undefined ? [] : ['-a', this.password, '--no-auth-warning']),
      ...(this.tls === undefined ? [] : ['--tls', '--cacert', this.tls.ca])
    ]
  }
}
