/** IPC between bench/scale.ts and its load-generator processes (bench/scale/holder.ts). */
export type HolderCommand =
  | {
    readonly type: 'open'
    readonly port: number
    readonly wsPath: string
    readonly count: number
    /** Index of this holder's first connection (which token it uses). */
    readonly offset: number
    readonly concurrency: number
    /** Bearer tokens for tickets (gateway); empty for a server without auth. */
    readonly tokens: readonly string[]
    /** Subscribe every connection to this channel and record deliveries. */
    readonly channel?: string
    readonly deadlineMs: number
  }
  | { readonly type: 'stats' }
  | { readonly type: 'close' }

export type HolderReply =
  | { readonly type: 'ready' }
  | { readonly type: 'opened', readonly open: number, readonly failed: number, readonly firstFailure?: string }
  /** `latencies`: a Float64Array of ms, base64. */
  | { readonly type: 'stats', readonly received: number, readonly open: number, readonly latencies: string }
  | { readonly type: 'closed' }
  | { readonly type: 'failed', readonly message: string }
