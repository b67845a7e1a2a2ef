/**
 * The one page-lifecycle listener pair of a client (SPEC §6): when the page becomes
 * visible again or the network comes back, reconnect at once instead of waiting out
 * the backoff. Both targets are injectable; by default they are the page's
 * `document` and `window`, and absent (a no-op) in Node.
 */
export interface EventTargetLike {
  addEventListener (type: string, listener: () => void): void
  removeEventListener (type: string, listener: () => void): void
}

export interface PageEnvironment {
  /** Fires `visibilitychange`; `visibilityState` says whether the page is shown. */
  readonly document?: EventTargetLike & { readonly visibilityState?: string }
  /** Fires `online`. */
  readonly window?: EventTargetLike
}

export function defaultPageEnvironment (): PageEnvironment {
  const scope = globalThis as { document?: PageEnvironment['document'], window?: EventTargetLike }
  return { document: scope.document, window: scope.window }
}

/** Calls `onBack` whenever the page is shown again or goes online. Returns the detach function. */
export function watchPage (environment: PageEnvironment, onBack: (reason: 'visible' | 'online') => void): () => void {
  const { document, window } = environment
  const onVisibilityChange = (): void => {
    if (document?.visibilityState === undefined || document.visibilityState === 'visible') onBack('visible')
  }
  const onOnline = (): void => { onBack('online') }
  document?.addEventListener('visibilitychange', onVisibilityChange)
  window?.addEventListener('online', onOnline)
  return () => {
    document?.removeEventListener('visibilitychange', onVisibilityChange)
    window?.removeEventListener('online', onOnline)
  }
}
