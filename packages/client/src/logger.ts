/**
 * Optional diagnostics. The SDK is silent by default: nothing reaches the console
 * unless the app passes a logger (`console` itself fits).
 */
export interface ClientLogger {
  debug?: (message: string, details?: Record<string, unknown>) => void
  info?: (message: string, details?: Record<string, unknown>) => void
  warn?: (message: string, details?: Record<string, unknown>) => void
  error?: (message: string, details?: Record<string, unknown>) => void
}
