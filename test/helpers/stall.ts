/** Blocks this process's event loop for `ms`: the stall under test. */
export function busyFor (ms: number): void {
  const until = performance.now() + ms
  while (performance.now() < until) { /* spinning on purpose */ }
}

/** Keeps this process's loop saturated (busy 300 ms of every 320 ms) until the returned stop is called. */
export function saturate (): () => void {
  const timer = setInterval(() => { busyFor(300) }, 320)
  return () => { clearInterval(timer) }
}
