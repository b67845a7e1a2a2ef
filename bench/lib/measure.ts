/** Small CPU-time measurements for the micro-benchmarks (bench/micro.ts, bench/jwt-verify.ts). */

export interface Measurement {
  readonly name: string
  readonly operations: number
  /** process.cpuUsage() per operation: every thread of this process (the libuv threadpool too). */
  readonly cpuMicros: number
  readonly wallMicros: number
}

/** Runs `fn` until `maxOperations` or `maxMs`, whichever comes first, after a short warm-up. */
export function measureSync (name: string, fn: (i: number) => unknown, maxOperations = 200_000, maxMs = 1500): Measurement {
  for (let i = 0; i < Math.min(2000, maxOperations); i++) fn(i)
  const wallStart = performance.now()
  const cpuStart = process.cpuUsage()
  let operations = 0
  const deadline = wallStart + maxMs
  while (operations < maxOperations) {
    for (let j = 0; j < 100; j++) fn(operations++)
    if (performance.now() > deadline) break
  }
  const cpu = process.cpuUsage(cpuStart)
  return { name, operations, cpuMicros: (cpu.user + cpu.system) / operations, wallMicros: 1000 * (performance.now() - wallStart) / operations }
}

/**
 * Runs `fn` with `concurrency` operations in flight (a closed loop, like a loaded
 * server) until `maxOperations` or `maxMs`, after a short warm-up.
 */
export async function measureAsync (name: string, fn: (i: number) => Promise<unknown>, concurrency = 50, maxOperations = 50_000, maxMs = 2000): Promise<Measurement> {
  const run = async (limit: number, ms: number): Promise<{ operations: number, cpu: number, wall: number }> => {
    let started = 0
    const wallStart = performance.now()
    const cpuStart = process.cpuUsage()
    const deadline = wallStart + ms
    const worker = async (): Promise<void> => {
      while (started < limit && performance.now() < deadline) await fn(started++)
    }
    await Promise.all(Array.from({ length: concurrency }, worker))
    const cpu = process.cpuUsage(cpuStart)
    return { operations: started, cpu: cpu.user + cpu.system, wall: 1000 * (performance.now() - wallStart) }
  }
  await run(Math.min(2000, maxOperations), 500)
  const result = await run(maxOperations, maxMs)
  return { name, operations: result.operations, cpuMicros: result.cpu / result.operations, wallMicros: result.wall / result.operations }
}
