/** The error a promise rejects with, or `undefined` if it resolves. */
export async function rejectionOf (pending: Promise<unknown>): Promise<unknown> {
  try {
    await pending
    return undefined
  } catch (err) {
    return err
  }
}

/** Resolves with `value` after `ms`: the far side of a race that catches hangs. */
export async function after<T> (ms: number, value: T): Promise<T> {
  return await new Promise((resolve) => { setTimeout(() => { resolve(value) }, ms).unref() })
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
