/** The error a promise rejects with, or `undefined` if it resolves. */
export async function rejectionOf (pending: Promise<unknown>): Promise<unknown> {
  try {
    await pending
    return undefined
  } catch (err) {
    return err
  }
}

export async function sleep (ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms))
}
